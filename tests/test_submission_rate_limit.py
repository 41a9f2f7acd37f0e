"""Each credential has its own rate: past its burst a credential gets
451 4.7.1 (try later), while another credential still sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission, until


def test_rate_limit_per_credential(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        # One message per 100 s after a burst of 3: the fourth cannot fit in this test.
        async with submission(tmp_path, mx.url, rate=0.01, burst=3) as s:
            c = await s.logged_in()
            for i in range(3):
                await c.sendmail(SENDER, ["ann@x.test"], message(f"m{i}"))
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as exc:
                await c.sendmail(SENDER, ["ann@x.test"], message("m3"))
            assert (exc.value.code, exc.value.message[:6]) == (451, "4.7.1 ")
            await c.quit()
            # A new connection with the same credential is still throttled.
            c = await s.logged_in()
            with pytest.raises(aiosmtplib.SMTPSenderRefused):
                await c.sendmail(SENDER, ["ann@x.test"], message("m4"))
            await c.quit()
            # Another credential of the same tenant has its own budget.
            user, password = s.credential("acme")
            c = await s.logged_in(user, password)
            await c.sendmail(SENDER, ["ann@x.test"], message("other"))
            await c.quit()
            assert s.server.stats["throttled"] == 2
            assert await until(lambda: len(handler.received) == 4)
            await asyncio.sleep(0.3)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    subjects = sorted(r.data.split(b"Subject: ")[1].split(b"\r\n")[0] for r in handler.received)
    assert subjects == [b"m0", b"m1", b"m2", b"other"]
