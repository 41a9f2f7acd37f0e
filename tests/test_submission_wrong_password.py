"""Bad credentials get 535 5.7.8 and no session: a wrong password, an
unknown user, a revoked key (even one that logged in before); a guesser is
cut off after max_auth_attempts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, submission


def test_wrong_credentials_are_refused(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url, max_auth_attempts=3) as s:
            c = await s.connected()
            for user, password in (
                (s.username, s.password + "x"),
                ("smtp_000000000000", s.password),
                (s.username, ""),
            ):
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as exc:
                    await c.auth_plain(user, password)
                assert (exc.value.code, exc.value.message[:6]) == (535, "5.7.8 ")
            r = await c.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
            assert (r.code, r.message[:6]) == (530, "5.7.0 ")
            # The fourth AUTH on one connection ends it.
            r = await c.execute_command(b"AUTH", b"LOGIN")
            assert r.code == 421
            c.close()

            # A revoked key fails at once, though its secret was verified before.
            c = await s.connected()
            await c.auth_login(s.username, s.password)
            await c.quit()
            assert s.keys.revoke(s.username)
            c = await s.connected()
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await c.auth_login(s.username, s.password)
            await c.quit()
            assert s.server.stats["failed_logins"] == 4

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert handler.received == []
