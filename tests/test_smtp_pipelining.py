"""RFC 2920 pipelining: one round trip a message, and correct per-message outcomes."""

from __future__ import annotations

import asyncio

import pytest

from mailsflux.delivery.smtp import SessionError, SMTPSession
from mailsflux.types import RenderedMessage
from tests._scripted_smtp import Conn, ScriptedSMTP


def msg(i: int, body: bytes | None = None) -> RenderedMessage:
    data = body if body is not None else b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)
    return RenderedMessage(
        mail_from="s@sender.example", rcpt_to=f"r{i}@example.com", data=data, message_id=str(i)
    )


def run(server: ScriptedSMTP, messages: list[RenderedMessage]) -> tuple[SMTPSession, list[object]]:
    async def go() -> tuple[SMTPSession, list[object]]:
        s = await SMTPSession.open("127.0.0.1", server.port, tls="none", timeout=5)
        out = await s.send(messages)
        await s.quit()
        return s, list(out)

    return asyncio.run(go())


def test_envelope_is_pipelined_and_bodies_arrive_intact() -> None:
    # The server answers MAIL and RCPT only once DATA has arrived: a client
    # that waited for each reply would time out.
    bodies = [b".leading dot\r\n..two\r\nplain\r\n", b"no final newline", b"x\r\n.\r\ny\r\n"]
    with ScriptedSMTP(hold_mail_reply_until_data=True) as server:
        session, out = run(server, [msg(i, b) for i, b in enumerate(bodies)])
    assert session.pipelining
    assert [o.status for o in out] == ["delivered"] * 3  # type: ignore[attr-defined]
    assert server.bodies == [bodies[0], b"no final newline\r\n", bodies[2]]
    assert server.sessions == 1


def test_mixed_outcomes_in_one_batch() -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith("RCPT TO:<r1@"):
            return "550 5.1.1 no such user"
        if cmd.startswith("RCPT TO:<r3@"):
            return "452 4.2.2 mailbox full"
        return None

    with ScriptedSMTP(script=script) as server:
        _, out = run(server, [msg(i) for i in range(5)])
    got = [(o.status, o.code) for o in out]  # type: ignore[attr-defined]
    assert got == [
        ("delivered", 250),
        ("bounced", 550),
        ("delivered", 250),
        ("deferred", 452),
        ("delivered", 250),
    ]
    # A refused envelope is reset before the next one.
    assert server.lines.count("RSET") == 2
    assert len(server.bodies) == 3


def test_data_accepted_without_a_recipient_is_ended_empty() -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        return "550 5.1.1 no such user" if cmd.startswith("RCPT TO:<r0@") else None

    with ScriptedSMTP(script=script, data_without_recipients=True) as server:
        _, out = run(server, [msg(0), msg(1)])
    assert [o.status for o in out] == ["bounced", "delivered"]  # type: ignore[attr-defined]
    # The refused message's body was never sent: an empty one ended the DATA.
    assert server.bodies == [b"", b"Subject: m1\r\n\r\nbody 1\r\n"]


def test_lock_step_when_the_server_does_not_pipeline() -> None:
    with ScriptedSMTP(pipelining=False) as server:
        session, out = run(server, [msg(i) for i in range(3)])
    assert not session.pipelining
    assert [o.status for o in out] == ["delivered"] * 3  # type: ignore[attr-defined]


def test_a_dropped_connection_reports_what_was_done() -> None:
    async def go(port: int) -> SessionError:
        s = await SMTPSession.open("127.0.0.1", port, tls="none", timeout=5)
        with pytest.raises(SessionError) as err:
            await s.send([msg(i) for i in range(4)])
        return err.value

    with ScriptedSMTP(drop_after_messages=2) as server:
        err = asyncio.run(go(server.port))
    # The second message's end-of-data reply never came: it is not counted as done.
    assert [o.status for o in err.completed] == ["delivered"]
    assert not err.permanent


def test_a_2xx_reply_to_data_is_not_a_delivery() -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        return "250 2.0.0 ok, but no data wanted" if cmd == "DATA" and conn.messages == 0 else None

    with ScriptedSMTP(script=script) as server:
        _, out = run(server, [msg(0)])
    assert [(o.status, o.code) for o in out] == [("deferred", 250)]  # type: ignore[attr-defined]
    assert server.bodies == []


def test_the_end_of_data_reply_has_its_own_longer_timeout() -> None:
    # RFC 5321 4.5.3.2.6: servers may scan a message before answering its final dot.
    async def go(port: int, data_timeout: float | None) -> list[object]:
        s = await SMTPSession.open(
            "127.0.0.1", port, tls="none", timeout=0.3, data_timeout=data_timeout
        )
        try:
            return list(await s.send([msg(0)]))
        finally:
            s.close()

    with ScriptedSMTP(end_of_data_delay=0.8) as server:
        out = asyncio.run(go(server.port, 5.0))
        assert [o.status for o in out] == ["delivered"]  # type: ignore[attr-defined]
        with pytest.raises(SessionError):
            asyncio.run(go(server.port, None))  # the command timeout alone is too short


def test_stop_ends_a_batch_after_the_envelope_already_on_the_wire() -> None:
    def script(cmd: str, conn: Conn) -> str | None:
        return "421 4.7.28 slow down" if cmd.startswith("RCPT TO:<r0@") else None

    async def go(port: int) -> list[object]:
        s = await SMTPSession.open("127.0.0.1", port, tls="none", timeout=5)
        out = await s.send([msg(i) for i in range(4)], stop=lambda o: o.code == 421)
        await s.quit()
        return list(out)

    with ScriptedSMTP(script=script) as server:
        out = asyncio.run(go(server.port))
    # r0 throttled; r1's envelope rode along with the RSET, so r1 went; r2, r3 not tried.
    assert [(o.status, o.code) for o in out] == [("deferred", 421), ("delivered", 250)]  # type: ignore[attr-defined]
    assert [b.split(b"\r\n", 1)[0] for b in server.bodies] == [b"Subject: m1"]
    assert not any(line.startswith(("RCPT TO:<r2@", "RCPT TO:<r3@")) for line in server.lines)


@pytest.mark.parametrize("size", ["\u00b2", "9" * 4400, "-5", "lots"])
def test_a_nonsense_size_means_no_limit(size: str) -> None:
    with ScriptedSMTP(size=size) as server:
        session, out = run(server, [msg(0)])
    assert session.size_limit == 0
    assert [o.status for o in out] == ["delivered"]  # type: ignore[attr-defined]
