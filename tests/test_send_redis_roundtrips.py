"""With the Redis throttle a job costs at most 0.05 Redis round trips a message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux.delivery import RedisThrottles
from mailsflux.jobs import Prepared, send
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import CountingRedis

pytestmark = pytest.mark.redis


def test_round_trips_per_message(tmp_path: Path, redis_url: str) -> None:
    n = 1000
    with SMTPServer(RecordingHandler()) as smtp:
        job = make_job(tmp_path, people(n), connections=4, html=None)
        text = job.read_text().replace(
            "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{smtp.port}"
        )
        job.write_text(text + f'rate = 100000\nburst = 256\nthrottle = "{redis_url}"\n')
        prepared = Prepared.load(job)

        async def go() -> tuple[int, int]:
            client = CountingRedis.from_url(redis_url)
            throttles = RedisThrottles(client)
            summary = await send(prepared, on_problem=lambda p: None, throttles=throttles)
            await client.aclose()
            return summary.sent, sum(client.calls.values())

        sent, calls = asyncio.run(go())
        prepared.close()
    assert sent == n
    # Grants cover whole batches and each session takes one lease: nothing per message.
    # (The burst is above one batch times the workers, so concurrent workers
    # never split a grant: what is counted is the design, not scheduling luck.)
    assert 0 < calls <= 0.05 * n, calls
