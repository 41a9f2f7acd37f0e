"""A Batch whose rows come slowly (its source stalls for several leases
mid-way) from a live engine: the engine renews its hold on the job from a
thread of its own, so the worker does not end it early, even when the
source is synchronous and holds up the event loop; every row is delivered
once and the job ends with all of them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailsflux import Batch, Engine, Message
from mailsflux.jobs import redis_batches
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 150
LEASE = 0.6


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_slow_source_keeps_its_job_open(
    tmp_path: Path, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setattr(redis_batches, "FEED_LEASE", LEASE)
    handler = RecordingHandler()

    async def rows() -> AsyncIterator[dict[str, str]]:
        for i in range(ROWS):
            if i == 70:
                await asyncio.sleep(4 * LEASE)  # the first entry is sent meanwhile
            yield {"email": f"r{i}@example.com", "n": str(i)}

    def rows_sync() -> Iterator[dict[str, str]]:
        for i in range(ROWS):
            if i == 70:
                time.sleep(4 * LEASE)  # a blocking source: the event loop waits too
            yield {"email": f"r{i}@example.com", "n": str(i)}

    async def go() -> object:
        async with Engine(config, redis=redis_url, redis_prefix=prefix) as engine:
            t = Message(sender="news@sender.example", to="", subject="Hi {{n}}", text="{{n}}")
            handle = await engine.submit(
                Batch(
                    template=t, recipients=rows() if kind == "async" else rows_sync(), name="slow"
                )
            )
            return await handle.wait()

    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url, attempts=1)
        with Workers(1, redis_url, prefix, tmp_path) as workers:
            summary = asyncio.run(go())
        log = workers.log(0)

    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter(f"r{i}@example.com" for i in range(ROWS)), log
    assert summary.sent == ROWS  # type: ignore[attr-defined]
    assert not summary.interrupted  # type: ignore[attr-defined]
    assert "stopped renewing" not in log
