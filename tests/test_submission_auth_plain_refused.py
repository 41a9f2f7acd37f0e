"""AUTH over a plain connection is refused (the password would cross in the
clear), and so is MAIL before AUTH, encrypted or not."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, submission


def test_auth_needs_tls_and_mail_needs_auth(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> list[tuple[int, str]]:
        seen = []
        async with submission(tmp_path, mx.url) as s:
            c = s.client(start_tls=False)
            await c.connect()
            await c.ehlo()
            assert c.supports_extension("starttls")
            assert not c.supports_extension("auth")  # not even offered before TLS
            plain = base64.b64encode(f"\0{s.username}\0{s.password}".encode())
            for cmd in (
                (b"AUTH", b"PLAIN", plain),
                (b"AUTH", b"LOGIN"),
                (b"MAIL", b"FROM:<" + SENDER.encode() + b">"),
            ):
                r = await c.execute_command(*cmd)
                seen.append((r.code, r.message.split(" ", 1)[0]))
            await c.starttls()
            await c.ehlo()
            assert c.supports_extension("auth")
            r = await c.execute_command(b"MAIL", b"FROM:<" + SENDER.encode() + b">")
            seen.append((r.code, r.message.split(" ", 1)[0]))
            await c.quit()
        return seen

    with SMTPServer(handler) as mx:
        seen = asyncio.run(go())
    assert seen == [(538, "5.7.11"), (538, "5.7.11"), (530, "5.7.0"), (530, "5.7.0")]
    assert handler.received == []
