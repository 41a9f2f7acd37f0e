"""A message the gateway cannot take is refused with a 5xx that says why
(no From header: 554 5.6.0), and the session goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission, until


def test_message_without_from_is_refused(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            c = await s.logged_in()
            headless = b"Subject: no sender\r\nTo: ann@x.test\r\n\r\nbody\r\n"
            with pytest.raises(aiosmtplib.SMTPDataError) as exc:
                await c.sendmail(SENDER, ["ann@x.test"], headless)
            assert (exc.value.code, exc.value.message[:6]) == (554, "5.6.0 ")
            assert "From" in exc.value.message
            await c.sendmail(SENDER, ["ann@x.test"], message("fine"))
            await c.quit()
            assert s.server.stats == {
                "connections": s.server.stats["connections"],
                "accepted": 1,
                "refused": 1,
                "throttled": 0,
                "failed_logins": 0,
            }
            assert await until(lambda: len(handler.received) == 1)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert b"Subject: fine" in handler.received[0].data
