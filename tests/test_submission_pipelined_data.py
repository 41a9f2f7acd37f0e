"""DATA as a pipelining client sends it: two transactions and QUIT in one
write, bodies with lines that start or end with dots. Every reply comes in
order, the dots are unstuffed exactly (RFC 5321 4.5.2), and the bytes after
one message's final dot are the next commands, not part of the message."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, submission, until

HEAD = f"From: {SENDER}\r\nTo: ann@x.test\r\nSubject: dots\r\n\r\n".encode()
BODY = b".leading dot\r\n.\r\nends with a dot.\r\n..two\r\n\r\n"


def stuffed(data: bytes) -> bytes:
    return b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in data.split(b"\r\n"))


def test_pipelined_transactions_and_dot_stuffing(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> list[bytes]:
        async with submission(tmp_path, mx.url) as s:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", s.implicit_port, ssl=s.tls(), server_hostname="localhost"
            )
            plain = base64.b64encode(f"\0{s.username}\0{s.password}".encode())
            writer.write(b"EHLO client.test\r\nAUTH PLAIN " + plain + b"\r\n")
            batch = b""
            for rcpt, body in ((b"ann@x.test", BODY), (b"bob@x.test", b"")):
                batch += b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<" + rcpt + b">\r\n"
                batch += b"DATA\r\n" + stuffed(HEAD + body) + b".\r\n"
            # No data at all: the lone dot right after 354 (refused: no header block).
            batch += b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<cy@x.test>\r\nDATA\r\n.\r\n"
            writer.write(batch + b"QUIT\r\n")
            replies = []
            while line := await reader.readline():
                replies.append(line[:3])
            writer.close()
            assert await until(lambda: len(handler.received) == 2)
            return replies

    with SMTPServer(handler) as mx:
        replies = asyncio.run(go())
    ehlo = replies.index(b"235")
    assert replies[ehlo:] == [b"235"] + [b"250", b"250", b"354", b"250"] * 2 + [
        b"250",
        b"250",
        b"354",
        b"554",
        b"221",
    ]
    by_rcpt = {r.rcpt_tos[0]: r.data for r in handler.received}
    assert by_rcpt["ann@x.test"].partition(b"\r\n\r\n")[2] == BODY
    # The empty body: the header block ends the message.
    head, _, body = by_rcpt["bob@x.test"].partition(b"\r\n\r\n")
    assert b"\r\nSubject: dots\r\n" in head and body == b""
