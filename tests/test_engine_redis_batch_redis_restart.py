"""Redis restarts (AOF on) while an engine puts a Batch in, down long enough
that a renewal of the job's lease falls in the outage: the engine keeps
renewing once Redis is back, the worker does not end the job early, and
every message is delivered once with no error to the caller."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsflux import Batch, Engine, Message
from mailsflux.jobs import redis_batches
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import AOFRedis
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 150
LEASE = 3.0  # renewed every second
PREFIX = "mfrestart"


def test_redis_restart_does_not_end_a_live_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_batches, "FEED_LEASE", LEASE)
    server = AOFRedis()
    server.start()
    handler = RecordingHandler()

    async def rows() -> AsyncIterator[dict[str, str]]:
        for i in range(ROWS):
            if i == 70:
                await asyncio.sleep(0.5)  # the first entry is in
                assert server.proc is not None
                server.proc.terminate()  # a clean stop: the AOF has every write
                await asyncio.to_thread(server.proc.wait, 10)
                await asyncio.sleep(1.5)
                await asyncio.to_thread(server.start)
            yield {"email": f"r{i}@example.com", "n": str(i)}

    async def go() -> object:
        async with Engine(config, redis=server.url, redis_prefix=PREFIX) as engine:
            t = Message(sender="news@sender.example", to="", subject="Hi {{n}}", text="{{n}}")
            handle = await engine.submit(Batch(template=t, recipients=rows(), name="restart"))
            return await asyncio.wait_for(handle.wait(), 90)

    try:
        with SMTPServer(handler) as smtp:
            config = engine_config(tmp_path, smtp.url, attempts=1)
            with Workers(1, server.url, PREFIX, tmp_path) as workers:
                summary = asyncio.run(go())
            log = workers.log(0)
    finally:
        server.stop()

    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter(f"r{i}@example.com" for i in range(ROWS)), log
    assert summary.sent == ROWS  # type: ignore[attr-defined]
    assert "stopped renewing" not in log
