"""10,000 submissions from 16 concurrent clients over STARTTLS: every one
acknowledged is delivered into the counting server exactly once, to its
recipient, under the Message-ID its 250 named."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import uvloop

from tests._mail import RecordingHandler, SMTPServer, parse
from tests._submission import SENDER, message, submission, until

N = 10_000
CLIENTS = 16


def test_ten_thousand_submissions_delivered_exactly_once(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> dict[str, str]:
        acked: dict[str, str] = {}  # Message-ID -> recipient
        todo = iter(range(N))
        async with submission(tmp_path, mx.url, rate=None) as s:

            async def client() -> None:
                c = await s.logged_in()
                for i in todo:
                    rcpt = f"user{i}@x.test"
                    _, reply = await c.sendmail(SENDER, [rcpt], message(f"n{i}", to=rcpt))
                    acked[reply.removeprefix("2.0.0 OK queued as ")] = rcpt
                await c.quit()

            await asyncio.gather(*(client() for _ in range(CLIENTS)))
            assert await until(lambda: len(handler.received) >= N, timeout=240)
            await asyncio.sleep(1.0)  # a duplicate would come now
        return acked

    with SMTPServer(handler) as mx:
        acked = uvloop.run(go())
    assert len(acked) == N
    got = Counter(parse(r.data)["Message-ID"].strip("<>") for r in handler.received)
    assert got == Counter(acked.keys())  # each exactly once, nothing else
    for r in handler.received:
        assert r.rcpt_tos == [acked[parse(r.data)["Message-ID"].strip("<>")]]
