"""The implicit-TLS listener (port 465 style): TLS from the first byte, AUTH
offered at once, no STARTTLS; the message arrives signed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib

from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record
from tests._submission import SENDER, message, submission, until


def test_implicit_tls(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            c = aiosmtplib.SMTP(
                hostname="localhost", port=s.implicit_port, use_tls=True, tls_context=s.tls()
            )
            await c.connect()
            await c.ehlo()
            assert c.get_transport_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
            assert not c.supports_extension("starttls")
            assert c.supports_extension("auth")
            await c.login(s.username, s.password)
            _, reply = await c.sendmail(SENDER, ["ann@x.test"], message("implicit"))
            assert reply.startswith("2.0.0 ")
            await c.quit()
            assert await until(lambda: len(handler.received) == 1)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    assert dkim_verify(handler.received[0].data, record, selector="s1", domain="acme.example")
