"""The compiled SMTP helpers against their Python references, and the reply timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery._smtpfast import parse, payload
from mailsflux.delivery.smtp import (
    Reply,
    SessionError,
    SMTPSession,
    _parse_py,
    _ReplyReader,
    _stuffed,
)
from mailsflux.errors import TemporaryDeliveryError
from mailsflux.types import RenderedMessage

# Bytes that matter to stuffing and parsing, plus anything else.
_SMTPISH = st.lists(
    st.sampled_from([b".", b"\r", b"\n", b"\r\n", b"\r\n.", b"250", b"-", b" ", b"x", b"\xc3\xa9"])
    | st.binary(max_size=8),
    max_size=60,
).map(b"".join)
_DATA = _SMTPISH | st.binary(max_size=300)


@given(_DATA, st.binary(max_size=40))
@example(b"", b"")
@example(b".", b"")
@example(b"\r\n.", b"MAIL")
@example(b".\r\n.\r\n..\r\n", b"")
@example(b"a\r\n", b"")
@example(b"a\r", b"")
@example(b"\n.\r\n.", b"")
@settings(max_examples=1500, deadline=None)
def test_payload_is_the_reference_stuffing(data: bytes, tail: bytes) -> None:
    assert payload(data, tail) == _stuffed(data) + tail
    assert payload(data) == _stuffed(data)


@given(_DATA, st.integers(0, 15), st.sampled_from([b"\r\n.", b".\r\n", b"\r", b"\n", b"ab"]))
@settings(max_examples=1500, deadline=None)
def test_payload_at_every_block_alignment(data: bytes, shift: int, edge: bytes) -> None:
    # The scan takes sixteen bytes at a time: a line end or a dot at each
    # offset within a block, and at the very end, stuffs as the reference does.
    data = b"y" * shift + data + edge
    assert payload(data, b"QUIT\r\n") == _stuffed(data) + b"QUIT\r\n"


def test_payload_of_a_large_message() -> None:
    body = b"".join(b"line %d\r\n.dot %d\r\n" % (i, i) for i in range(100_000))
    assert payload(body, b"RSET\r\n") == _stuffed(body) + b"RSET\r\n"


def _replies() -> st.SearchStrategy[bytes]:
    line = st.builds(
        lambda code, sep, text, end: code + sep + text + end,
        st.sampled_from([b"250", b"354", b"550", b"421", b"99", b"2x0", b""]),
        st.sampled_from([b" ", b"-", b"", b"x"]),
        st.binary(max_size=20) | st.sampled_from([b"2.0.0 ok", b"\xff\xfe bad utf-8", b"\r"]),
        st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b""]),
    )
    return st.lists(line, max_size=12).map(b"".join)


@given(_replies() | st.binary(max_size=200), st.lists(st.text(max_size=5), max_size=3))
@example(b"250 ok\r\n", [])
@example(b"250-a\r\n250-b\r\n250 c\r\n354 go\r\n", [])
@example(b"250-a\r\n25", ["earlier"])
@example(b"xx\r\n250 ok\r\n", [])
@example(b"250\r\n", [])
@example(b"\r\n", [])
@example(b"250x\r\n", [])
@settings(max_examples=2000, deadline=None)
def test_parse_is_the_reference_parser(buf: bytes, pending: list[str]) -> None:
    lines_c, lines_py = list(pending), list(pending)
    got = parse(buf, lines_c)
    assert got == _parse_py(buf, lines_py)
    assert lines_c == lines_py
    assert parse(bytearray(buf), list(pending)) == got
    assert parse(memoryview(buf), list(pending)) == got


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _reference_replies(stream: bytes) -> tuple[list[Reply], bool]:
    """What the reader must hand out for ``stream``, however it is cut up."""
    consumed, replies, bad = _parse_py(stream, [])
    failed = bad is not None
    if not failed:
        rest = stream[consumed:]
        failed = len(rest) > 64 * 1024
    return [Reply(c, t) for c, t in replies], failed


@given(
    _replies(),
    st.lists(st.integers(min_value=0, max_value=30), max_size=10),
    st.sampled_from([bytes, bytearray, memoryview]),
)
@settings(max_examples=1000, deadline=None)
def test_the_reader_gives_the_same_replies_however_the_bytes_arrive(
    stream: bytes, cuts: list[int], kind: Callable[[bytes], Any]
) -> None:
    # uvloop hands bytes; a bytearray or memoryview must read the same.
    reader = _ReplyReader(_Transport())
    pos = 0
    for n in cuts:
        if reader._lost is not None:
            break
        reader.data_received(kind(stream[pos : pos + n]))
        pos += n
    if reader._lost is None:
        reader.data_received(kind(stream[pos:]))
    want, failed = _reference_replies(stream)
    assert list(reader._replies) == want
    assert (reader._lost is not None) == failed


def test_a_hostile_endless_reply_is_refused() -> None:
    reader = _ReplyReader(_Transport())
    for _ in range(100):
        reader.data_received(b"250-" + b"x" * 1000)
        if reader._lost is not None:
            break
    assert isinstance(reader._lost, TemporaryDeliveryError)
    reader = _ReplyReader(_Transport())
    reader.data_received(b"250-x\r\n" * 1001)
    assert reader._lost is not None


async def _mute_server(delay: float | None) -> asyncio.Server:
    """EHLO with PIPELINING, then each reply after ``delay`` s (never, if None)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mute ESMTP\r\n")
        in_data = False
        try:
            while line := await reader.readline():
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        reply = b"250 2.0.0 queued\r\n"
                    else:
                        continue
                elif line.startswith(b"EHLO"):
                    writer.write(b"250-mute\r\n250 PIPELINING\r\n")
                    continue
                elif line.startswith(b"DATA"):
                    in_data, reply = True, b"354 go\r\n"
                elif line.startswith(b"QUIT"):
                    writer.write(b"221 bye\r\n")
                    break
                else:
                    reply = b"250 ok\r\n"
                if delay is None:
                    continue
                await asyncio.sleep(delay)
                writer.write(reply)
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _msg(i: int) -> RenderedMessage:
    return RenderedMessage(
        "s@example.org", f"r{i}@example.com", b"Subject: x\r\n\r\nhi\r\n", str(i)
    )


def test_no_reply_within_the_timeout_breaks_the_session() -> None:
    async def go() -> tuple[SessionError, float]:
        server = await _mute_server(None)
        port = server.sockets[0].getsockname()[1]
        s = await SMTPSession.open("127.0.0.1", port, tls="none", timeout=0.3)
        start = time.monotonic()
        with pytest.raises(SessionError) as err:
            await s.send([_msg(0), _msg(1)])
        elapsed = time.monotonic() - start
        assert not s.is_open
        server.close()
        return err.value, elapsed

    err, elapsed = asyncio.run(go())
    assert "no reply within 0.3 s" in str(err)
    assert err.completed == []
    assert 0.25 <= elapsed < 3


def test_the_timeout_is_per_reply_not_per_batch() -> None:
    # Every reply takes 0.1 s against a 0.35 s timeout; the batch takes far longer.
    async def go() -> list[str]:
        server = await _mute_server(0.1)
        port = server.sockets[0].getsockname()[1]
        s = await SMTPSession.open("127.0.0.1", port, tls="none", timeout=0.35)
        out = await s.send([_msg(i) for i in range(3)])
        await s.quit()
        server.close()
        return [o.status for o in out]

    assert asyncio.run(go()) == ["delivered"] * 3


def test_bare_line_ends_cannot_end_the_data_early() -> None:
    # "LF . CRLF" ends DATA at servers that take a bare LF as a line end: the
    # command after it would run (SMTP smuggling). Bare CR and LF become CRLF.
    smuggle = b"Subject: x\r\n\r\na\n.\r\nMAIL FROM:<x@evil.example>\r\n"
    out = payload(smuggle)
    assert out == b"Subject: x\r\n\r\na\r\n..\r\nMAIL FROM:<x@evil.example>\r\n.\r\n"
    assert payload(b"a\r.\rb") == b"a\r\n..\r\nb\r\n.\r\n"
    assert _stuffed(smuggle) == out
