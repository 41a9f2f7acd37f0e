"""The session's compiled envelope against the Python reference, reply groups
(one wait for several pipelined replies) and the scheduler's cached-route path."""

from __future__ import annotations

import asyncio

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery._smtpfast import ascii_address, envelope
from mailsflux.delivery.mx import MXResolver, Route
from mailsflux.delivery.scheduler import Scheduler, SiteLimits
from mailsflux.delivery.smtp import _ASCII_ADDRESS, SessionError, SMTPSession, _address
from mailsflux.types import DeliveryResult, RenderedMessage
from tests._mail import RecordingHandler, SMTPServer

# Characters that matter to the address grammar, and some that do not.
_ADDR_CHARS = st.sampled_from(
    list("aZ09.-@[]:!#$%&'*+/=?^_`{|}~ \"<>\\,;()\r\n\t\x00\x7f")
) | st.text(max_size=1)
_ADDRS = st.lists(_ADDR_CHARS, max_size=24).map("".join) | st.builds(
    lambda a, b: f"{a}@{b}",
    st.from_regex(r"[A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]{0,8}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9.\-\[\]:]{0,12}", fullmatch=True),
)


@given(_ADDRS)
@example("a@b")
@example("a.b@c-d.e")
@example(".a@b")
@example("a.@b")
@example("a..b@c")
@example("a@-b")
@example("a@b-")
@example("a@b.")
@example("a@b..c")
@example("a@[1.2.3.4]")
@example("a@[]")
@example("a@[1]x")
@example("a@b@c")
@example("@b")
@example("a@")
@example("")
@example("a@b\n")
@example("é@b")
@settings(max_examples=4000, deadline=None)
def test_ascii_address_is_the_regex(addr: str) -> None:
    want = addr.isascii() and _ASCII_ADDRESS(addr) is not None
    assert ascii_address(addr) is want


def _reference_envelope(mail_from: str, rcpt_to: str, size: int) -> bytes | None:
    if not (mail_from.isascii() and rcpt_to.isascii()):
        return None
    if _address(rcpt_to) is None or (mail_from and _address(mail_from) is None):
        return None
    opts = b" SIZE=%d" % size if size >= 0 else b""
    return (
        b"MAIL FROM:<" + mail_from.encode() + b">" + opts + b"\r\n"
        b"RCPT TO:<" + rcpt_to.encode() + b">\r\nDATA\r\n"
    )


@given(
    _ADDRS | st.just("") | st.just("s@example.org"),
    _ADDRS | st.just("r@example.com"),
    st.integers(min_value=-1, max_value=2**62) | st.just(0),
)
@example("", "r@example.com", -1)
@example("s@example.org", "r@example.com", 123)
@example("s@exämple.org", "r@example.com", 1)
@settings(max_examples=3000, deadline=None)
def test_envelope_is_the_reference(mail_from: str, rcpt_to: str, size: int) -> None:
    assert envelope(mail_from, rcpt_to, size) == _reference_envelope(mail_from, rcpt_to, size)


def _msg(i: int, rcpt: str | None = None) -> RenderedMessage:
    return RenderedMessage(
        "s@example.org", rcpt or f"r{i}@example.com", b"Subject: x\r\n\r\nhi\r\n", str(i)
    )


async def _server(script: list[tuple[float, bytes]], close: bool) -> asyncio.Server:
    """EHLO with PIPELINING; then, once MAIL comes, each (delay, bytes) in turn
    without reading; then it closes (``close``) or stays mute."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while line := await reader.readline():
                if line.startswith(b"EHLO"):
                    writer.write(b"250-scripted\r\n250 PIPELINING\r\n")
                    continue
                if line.startswith(b"MAIL"):
                    for delay, data in script:
                        await asyncio.sleep(delay)
                        writer.write(data)
                        await writer.drain()
                    if close:
                        # What the client sent meanwhile is read first: closing
                        # on unread data would reset the connection.
                        try:
                            await asyncio.wait_for(reader.read(1 << 20), 0.1)
                        except TimeoutError:
                            pass
                        break
                    await asyncio.sleep(10)
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _send(
    script: list[tuple[float, bytes]], close: bool, messages: list[RenderedMessage], timeout: float
) -> list[str] | SessionError:
    async def go() -> list[str] | SessionError:
        server = await _server(script, close)
        port = server.sockets[0].getsockname()[1]
        s = await SMTPSession.open("127.0.0.1", port, tls="none", timeout=timeout)
        try:
            out = await s.send(messages)
        except SessionError as exc:
            return exc
        finally:
            s.close()
            server.close()
        return [f"{o.status} {o.code} {o.stage}" for o in out]

    return asyncio.run(go())


def test_replies_spread_out_each_get_the_whole_timeout() -> None:
    # MAIL, RCPT and DATA are answered 0.2 s apart against a 0.35 s timeout:
    # one wait for the three must not hold them to 0.35 s together.
    script = [
        (0.2, b"250 ok\r\n"),
        (0.2, b"250 ok\r\n"),
        (0.2, b"354 go\r\n"),
        (0.2, b"250 done\r\n"),
    ]
    assert _send(script, True, [_msg(0)], 0.35) == ["delivered 250 eod"]


def test_a_group_cut_short_by_a_timeout_breaks_the_session() -> None:
    got = _send([(0, b"250 ok\r\n")], False, [_msg(0)], 0.3)
    assert isinstance(got, SessionError)
    assert "no reply within 0.3 s" in got.message
    assert got.completed == [] and got.reply is None


def test_a_refusal_before_the_break_is_the_sessions_reason() -> None:
    # The server answers MAIL, refuses RCPT with 421 and closes before DATA's
    # reply: the 421 is the reply that came, as reading one by one would see.
    got = _send([(0, b"250 ok\r\n421 4.3.2 closing\r\n")], True, [_msg(0)], 5)
    assert isinstance(got, SessionError)
    assert got.reply is not None and (got.reply.code, got.reply.text) == (421, "4.3.2 closing")
    assert got.completed == [] and got.closed


def test_a_break_while_the_end_of_data_is_awaited_names_no_refusal() -> None:
    # The envelope is taken (250, 250, 354), then the server closes before it
    # answers the final dot: the 354 was no refusal, so the session's break
    # carries none (the scheduler would feed it to the shaper and pause).
    got = _send([(0, b"250 ok\r\n250 ok\r\n354 go\r\n")], True, [_msg(0)], 5)
    assert isinstance(got, SessionError)
    assert got.completed == [] and got.closed
    assert got.reply is None


def test_a_break_after_whole_groups_keeps_their_outcomes() -> None:
    # Message 0 delivered (its end and message 1's envelope answered in one
    # segment), then the server closes before message 1's end is answered.
    first = b"250 ok\r\n250 ok\r\n354 go\r\n"
    script = [(0, first), (0.05, b"250 done\r\n250 ok\r\n550 no\r\n554 no data\r\n")]
    got = _send(script, True, [_msg(0), _msg(1), _msg(2)], 5)
    # Message 1 refused at RCPT; the RSET then finds the connection closed.
    assert isinstance(got, SessionError)
    assert [f"{o.status} {o.code} {o.stage}" for o in got.completed] == [
        "delivered 250 eod",
        "bounced 550 rcpt",
    ]


def test_an_invalid_recipient_is_refused_locally_in_line() -> None:
    script = [
        (0, b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (0.05, b"250 done\r\n" + b"250 ok\r\n250 ok\r\n354 go\r\n"),
        (0.05, b"250 done\r\n"),
    ]
    got = _send(script, True, [_msg(0), _msg(1, "bad@@x"), _msg(2)], 5)
    assert got == ["delivered 250 eod", "bounced None eod", "delivered 250 eod"]


class _CountingResolver(MXResolver):
    def __init__(self, port: int) -> None:
        super().__init__(smarthost=("127.0.0.1", port))
        self.asked = 0

    async def resolve(self, domain: str) -> Route:
        self.asked += 1
        return await super().resolve(domain)


def _deliver_all(resolver: MXResolver, n: int) -> list[DeliveryResult]:
    results: list[DeliveryResult] = []

    async def go() -> None:
        scheduler = Scheduler(
            resolver, results.append, default_limits=SiteLimits(connections=1, tls="none")
        )
        for i in range(n):
            await scheduler.submit(_msg(i))
        await scheduler.close()

    asyncio.run(go())
    return results


def test_a_resolver_that_overrides_resolve_is_asked_for_every_message() -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        resolver = _CountingResolver(server.port)
        results = _deliver_all(resolver, 40)
    assert [r.status for r in results] == ["delivered"] * 40
    assert resolver.asked == 40
    assert len(handler.received) == 40


def test_a_cached_route_is_taken_without_asking_resolve_again() -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        resolver = MXResolver(smarthost=("127.0.0.1", server.port))
        results = _deliver_all(resolver, 40)
    assert sorted(int(r.message_id) for r in results) == list(range(40))
    assert {r.status for r in results} == {"delivered"}
    assert (resolver.misses, resolver.hits) == (1, 39)
