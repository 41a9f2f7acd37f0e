"""STARTTLS done right: commands a client (or a man in the middle) sends in
the clear after STARTTLS are dropped, not run inside the TLS session
(RFC 3207 section 5); a client that answers STARTTLS with garbage loses its
connection, and the listener goes on serving others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission


async def _line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 10)


def test_plaintext_after_starttls_is_dropped(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> tuple[bytes, bytes]:
        async with submission(tmp_path, mx.url) as s:
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            await _line(reader)  # greeting
            writer.write(b"EHLO client.test\r\n")
            while not (await _line(reader)).startswith(b"250 "):
                pass
            writer.write(b"STARTTLS\r\nMAIL FROM:<" + SENDER.encode() + b">\r\n")
            assert (await _line(reader)).startswith(b"220 ")
            await writer.start_tls(s.tls(), server_hostname="localhost")
            writer.write(b"NOOP after\r\n")
            first = await _line(reader)  # the NOOP's 250; the MAIL would have got 503
            writer.write(b"QUIT\r\n")
            await _line(reader)
            writer.close()

            # Garbage instead of a TLS handshake: the connection goes...
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            await _line(reader)
            writer.write(b"EHLO client.test\r\n")
            while not (await _line(reader)).startswith(b"250 "):
                pass
            writer.write(b"STARTTLS\r\n")
            await _line(reader)
            writer.write(b"this is not a ClientHello\r\n" * 4)
            gone = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            # ...and the listener still serves.
            c = await s.logged_in()
            await c.sendmail(SENDER, ["ann@x.test"], message())
            await c.quit()
            return first, gone

    with SMTPServer(handler) as mx:
        first, gone = asyncio.run(go())
    assert first.startswith(b"250 ")
    assert gone == b""
