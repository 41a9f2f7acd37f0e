"""``Engine(redis=URL).submit(job_file, relay=...)``: the workers send a job
file's rows by its own relay or their ``--relay``, so a relay given here
would silently go unused. It is refused with one line naming ``relay``,
before anything reaches Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from mailsflux import Engine
from mailsflux.errors import ConfigError
from tests._jobs import make_job, people

pytestmark = pytest.mark.redis


def test_job_file_relay_refused_under_redis(tmp_path: Path, redis_url: str, prefix: str) -> None:
    job = make_job(tmp_path, people(3), algorithm="ed25519-sha256")

    async def go() -> None:
        async with Engine(redis=redis_url, redis_prefix=prefix) as engine:
            await engine.submit(job, relay="smtp+plain://127.0.0.1:2525")

    with pytest.raises(ConfigError) as got:
        asyncio.run(go())
    assert got.value.field == "relay"
    assert "\n" not in str(got.value)
    client = redis.Redis.from_url(redis_url)
    try:
        # No job was put in: the engine's outbox aside, no key names this job.
        assert not [k for k in client.scan_iter(f"{prefix}*") if b"job-" in k]
    finally:
        client.close()
