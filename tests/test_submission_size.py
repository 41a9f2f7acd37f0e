"""SIZE is advertised and enforced: declared too big at MAIL, or sent too
big in DATA, the message is refused with 552 5.3.4 and nothing is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission, until

LIMIT = 4096


def test_size_limit(tmp_path: Path) -> None:
    handler = RecordingHandler()
    big = message("big") + (b"x" * 70 + b"\r\n") * 80  # 80 lines of 72 bytes: over the limit

    async def go() -> None:
        async with submission(tmp_path, mx.url, max_size=LIMIT) as s:
            c = await s.connected()
            await c.ehlo()
            assert c.esmtp_extensions["size"] == str(LIMIT)
            await c.login(s.username, s.password)
            r = await c.execute_command(b"MAIL", f"FROM:<{SENDER}> SIZE={LIMIT + 1}".encode())
            assert (r.code, r.message[:6]) == (552, "5.3.4 ")
            # Not declared: refused once the data is in.
            await c.mail(SENDER)
            await c.rcpt("ann@x.test")
            with pytest.raises(aiosmtplib.SMTPDataError) as exc:
                await c.data(big)
            assert (exc.value.code, exc.value.message[:6]) == (552, "5.3.4 ")
            # The session goes on: a message within the limit is accepted.
            await c.sendmail(SENDER, ["ann@x.test"], message("small"))
            await c.quit()
            assert await until(lambda: len(handler.received) == 1)
            await asyncio.sleep(0.3)

    assert len(big) > LIMIT
    with SMTPServer(handler) as mx:
        asyncio.run(go())
    assert [b"Subject: small" in r.data for r in handler.received] == [True]
