"""Recipients per message are capped (452 4.5.3), each recipient address is
checked as it comes (553 5.1.3), and over-long lines are refused (500 5.5.2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission, until


def test_recipient_and_line_limits(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        async with submission(tmp_path, mx.url, max_recipients=3) as s:
            c = await s.logged_in()
            await c.mail(SENDER)
            r = await c.execute_command(b"RCPT", b"TO:<not-an-address>")
            assert (r.code, r.message[:6]) == (553, "5.1.3 ")
            for i in range(3):
                await c.rcpt(f"r{i}@x.test")
            r = await c.execute_command(b"RCPT", b"TO:<r3@x.test>")
            assert (r.code, r.message[:6]) == (452, "4.5.3 ")
            # A line over 998 characters: the message is refused whole.
            with pytest.raises(aiosmtplib.SMTPDataError) as exc:
                await c.data(message("long") + b"y" * 1200 + b"\r\n")
            assert (exc.value.code, exc.value.message[:6]) == (500, "5.5.2 ")
            # Three recipients, short lines: accepted, a copy to each.
            await c.sendmail(SENDER, [f"r{i}@x.test" for i in range(3)], message("ok"))
            await c.quit()
            assert await until(lambda: len(handler.received) == 3)
            await asyncio.sleep(0.3)

    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "r0@x.test",
        "r1@x.test",
        "r2@x.test",
    ]
    assert all(b"Subject: ok" in r.data for r in handler.received)
