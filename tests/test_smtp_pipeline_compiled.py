"""The compiled pipelined exchange (``_smtpfast.Pipeline``, issue 17) against
the session's Python path: for any run of replies (refusals of MAIL, RCPT or
DATA, a refused final dot, a message the server cannot take, a stop after
a throttling reply, a connection dropped mid-batch), the same outcomes and
the same commands and messages on the wire."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery.smtp import Outcome, SessionError, SMTPSession
from mailsflux.types import RenderedMessage
from tests._scripted_smtp import Conn, ScriptedSMTP

# The usual replies first, then odd ones a broken server may send.
_MAIL = ["250 2.1.0 ok", "451 4.3.0 try later", "550 5.7.1 sender refused", "354 odd", "199 x"]
_RCPT = ["250 2.1.5 ok", "450 4.2.1 mailbox busy", "550 5.1.1 no such user", "251 forwarded"]
_DATA = ["354 go ahead", "554 5.5.1 no thanks", "250 odd", "355 nearly", "600 what"]
_DOT = ["250 2.0.0 queued", "452 4.3.1 full", "554 5.7.1 spam", "421 4.7.0 slow down", "354 x"]
_DOT += ["299 fine", "199 early"]

# One message: which reply each command gets, and what it is.
_ONE = st.fixed_dictionaries(
    {
        "mail": st.sampled_from(range(len(_MAIL))) | st.just(0) | st.just(0),
        "rcpt": st.sampled_from(range(len(_RCPT))) | st.just(0) | st.just(0),
        "data": st.sampled_from(range(len(_DATA))) | st.just(0) | st.just(0),
        "dot": st.sampled_from(range(len(_DOT))) | st.just(0) | st.just(0),
        "kind": st.sampled_from(["plain", "plain", "plain", "big", "utf8", "flagged", "bad"]),
    }
)


def _messages(plan: list[dict[str, Any]]) -> list[RenderedMessage]:
    out = []
    for i, p in enumerate(plan):
        rcpt = {"utf8": f"ü{i}@example.com", "bad": f"r{i}@"}.get(p["kind"], f"r{i}@example.com")
        body = b"x" * 3000 if p["kind"] == "big" else b"Subject: %d\r\n\r\n.dot\r\nhi\r\n" % i
        # "flagged": ASCII addresses, but SMTPUTF8 asked for (the Python path's).
        utf8 = p["kind"] in ("utf8", "flagged")
        out.append(RenderedMessage(f"s{i}@example.org", rcpt, body, f"m{i}", smtputf8=utf8))
    return out


def _script(plan: list[dict[str, Any]]) -> Any:
    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith("MAIL FROM:<s"):
            conn.current = int(cmd[len("MAIL FROM:<s") :].split("@")[0])  # type: ignore[attr-defined]
        i: int = getattr(conn, "current", 0)
        p = plan[i]
        if cmd.startswith("MAIL"):
            return _MAIL[p["mail"]]
        if cmd.startswith("RCPT"):
            return _RCPT[p["rcpt"]]
        if cmd == "DATA":
            return _DATA[p["data"]] if p["data"] else None
        if cmd == ".":
            return _DOT[p["dot"]]
        return None

    return script


def _stopper() -> Any:
    """As the scheduler's: stop after two refusals in a row, or a 421; one
    refusal was counted before this batch (the site's own_faults)."""
    run = 1

    def stop(o: Outcome) -> bool:
        nonlocal run
        if o.status == "delivered":
            run = 0
            return False
        if o.code is None:
            return False
        if o.code == 421:
            return True
        run += 1
        return run >= 2

    return stop


async def _python_only(self: SMTPSession, *args: object) -> tuple[int, bool]:
    return 0, False


def _send(
    plan: list[dict[str, Any]], compiled: bool, drop: int | None = None
) -> tuple[list[tuple[Any, ...]], list[str], list[bytes], str]:
    compiled_path = SMTPSession._pipelined
    if not compiled:  # the reference: the session's Python path only
        SMTPSession._pipelined = _python_only  # type: ignore[method-assign]
    try:
        with ScriptedSMTP(script=_script(plan), size="2000", drop_after_messages=drop) as server:

            async def go() -> tuple[list[Outcome], str | None, int]:
                s = await SMTPSession.open("127.0.0.1", server.port, tls="none", timeout=5)
                try:
                    return await s.send(_messages(plan), stop=_stopper()), None, s.sent
                except SessionError as exc:
                    return list(exc.completed), exc.message, s.sent
                finally:
                    s.close()

            outcomes, broke, sent = asyncio.run(go())
            lines = [ln for ln in server.lines if not ln.startswith("EHLO")]
            bodies = list(server.bodies)
    finally:
        SMTPSession._pipelined = compiled_path  # type: ignore[method-assign]
    return [tuple(o) for o in outcomes], lines, bodies, f"{broke} after {sent} sent"


_OK = {"mail": 0, "rcpt": 0, "data": 0, "dot": 0, "kind": "plain"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A refused final dot after a delivery: the refusal count starts again.
@example(plan=[_OK, {**_OK, "dot": 1}, _OK, _OK, _OK], drop=None)
# A message the server cannot take behind one it took, and one after.
@example(plan=[_OK, {**_OK, "kind": "big"}, _OK, {**_OK, "kind": "utf8"}, _OK], drop=None)
# Refused envelopes, a DATA answered 250, and the connection dropped.
@example(plan=[{**_OK, "mail": 1}, {**_OK, "data": 2}, _OK, _OK, _OK, _OK], drop=2)
@given(plan=st.lists(_ONE, min_size=1, max_size=10), drop=st.none() | st.integers(1, 4))
def test_the_compiled_exchange_is_the_python_one(
    plan: list[dict[str, Any]], drop: int | None
) -> None:
    assert _send(plan, True, drop) == _send(plan, False, drop)


def test_a_batch_all_accepted_is_sent_whole() -> None:
    plan = [_OK] * 40
    handed_back: list[tuple[int, bool]] = []
    compiled = SMTPSession._pipelined

    async def spy(self: SMTPSession, *args: Any) -> tuple[int, bool]:
        handed_back.append(await compiled(self, *args))
        return handed_back[-1]

    SMTPSession._pipelined = spy  # type: ignore[method-assign]
    try:
        outcomes, lines, bodies, broke = _send(plan, True)
    finally:
        SMTPSession._pipelined = compiled  # type: ignore[method-assign]
    # The compiled exchange took the whole batch: nothing was left to Python.
    assert handed_back == [(40, False)]
    assert broke == "None after 40 sent" and [o[0] for o in outcomes] == ["delivered"] * 40
    assert len(bodies) == 40 and bodies[0].endswith(b"\r\n.dot\r\nhi\r\n")  # unstuffed again
    assert lines.count("DATA") == 40 and "RSET" not in lines


def test_a_refused_recipient_mid_batch_is_handed_back_and_the_batch_goes_on() -> None:
    ok = _OK
    plan = [ok, ok, {**ok, "rcpt": 2}, ok, {**ok, "dot": 1}, ok]
    outcomes, lines, _, broke = _send(plan, True)
    assert broke == "None after 5 sent"
    assert [(o[0], o[1], o[3]) for o in outcomes] == [
        ("delivered", 250, "eod"),
        ("delivered", 250, "eod"),
        ("bounced", 550, "rcpt"),
        ("delivered", 250, "eod"),
        ("deferred", 452, "eod"),
        ("delivered", 250, "eod"),
    ]
    assert lines.count("RSET") == 1
