"""Question: what does asking the throttle cost per message, and how many Redis round trips?

Acquire cost per message for the in-process and the Redis backend, with
batches of 1, 20 and 100 messages per call (two specs per call: site and
job, as the scheduler will ask), and Redis round trips per message counted
on the client (every command is one round trip; nothing is pipelined). The
limits are set high so every call is granted in full: this measures the
throttle's own cost, not the waiting it imposes. Run:

    .venv/bin/python -m pytest bench/bench_throttle.py --benchmark-enable

or as a script for a quick table: ``.venv/bin/python bench/bench_throttle.py [messages]``.
Redis: ``MAILSFLUX_TEST_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.delivery import LocalThrottles, RateSpec, RedisThrottles

URL = os.environ.get("MAILSFLUX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SPECS = [
    RateSpec("site:bench.example", limit=10**9, burst=10**6, period=1.0),
    RateSpec("job:bench", limit=10**9, burst=10**6, period=1.0),
]
BATCHES = (1, 20, 100)


class CountingRedis(aioredis.Redis):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: collections.Counter[str] = collections.Counter()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.calls[str(args[0]).upper()] += 1
        return await super().execute_command(*args, **options)


#: Acquire calls per benchmark round (one event-loop entry per round, not per call).
CALLS = 50


async def _calls(t: Any, batch: int) -> None:
    for _ in range(CALLS):
        await t.acquire(SPECS, batch)


def redis_up() -> bool:
    try:
        client = redis.Redis.from_url(URL, socket_connect_timeout=1)
        ok = bool(client.ping())
        client.close()
        return ok
    except (redis.RedisError, OSError):
        return False


def _cleanup(prefix: str) -> None:
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


async def _drive(t: Any, messages: int, batch: int) -> float:
    """Seconds per message to acquire ``messages`` in calls of ``batch``."""
    start = time.perf_counter()
    left = messages
    while left:
        left -= (await t.acquire(SPECS, min(batch, left))).granted
    return (time.perf_counter() - start) / messages


def measure_local(messages: int, batch: int) -> float:
    async def go() -> float:
        t = LocalThrottles()
        await _drive(t, min(messages, 1000), batch)  # warm up
        return min([await _drive(t, messages, batch) for _ in range(3)])

    return asyncio.run(go())


def measure_redis(messages: int, batch: int) -> tuple[float, float]:
    """(seconds per message, round trips per message) over one connection."""
    prefix = f"mfbench{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[float, float]:
        client = CountingRedis.from_url(URL)
        t = RedisThrottles(client, prefix=prefix)
        await _drive(t, min(messages, 200), batch)  # warm up, SCRIPT LOAD
        client.calls.clear()
        best = min([await _drive(t, messages, batch) for _ in range(3)])
        trips = sum(client.calls.values()) / (3 * messages)
        await client.aclose()
        return best, trips

    try:
        return asyncio.run(go())
    finally:
        _cleanup(prefix)


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(
        ("redis vs local acquire cost, batch 20", "throttle_redis_b20", "throttle_local_b20")
    )

    @pytest.mark.benchmark(group="throttle")
    @pytest.mark.parametrize("batch", BATCHES)
    def test_local_acquire(benchmark: Any, batch: int) -> None:
        t = LocalThrottles()
        loop = asyncio.new_event_loop()
        try:
            benchmark(lambda: loop.run_until_complete(_calls(t, batch)))
        finally:
            loop.close()
        if benchmark.stats:
            RESULTS[f"throttle_local_b{batch}"] = benchmark.stats.stats.mean / (CALLS * batch)

    @pytest.mark.benchmark(group="throttle")
    @pytest.mark.parametrize("batch", BATCHES)
    def test_redis_acquire(benchmark: Any, batch: int) -> None:
        if not redis_up():
            pytest.skip(f"no Redis at {URL}")
        prefix = f"mfbench{uuid.uuid4().hex[:8]}"
        loop = asyncio.new_event_loop()
        client = CountingRedis.from_url(URL)
        t = RedisThrottles(client, prefix=prefix)
        try:
            loop.run_until_complete(t.acquire(SPECS, batch))
            client.calls.clear()
            benchmark(lambda: loop.run_until_complete(_calls(t, batch)))
            calls = sum(client.calls.values())
            assert calls == client.calls["EVALSHA"]  # one round trip per call
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()
            _cleanup(prefix)
        if benchmark.stats:
            RESULTS[f"throttle_redis_b{batch}"] = benchmark.stats.stats.mean / (CALLS * batch)
except ImportError:  # run as a plain script without pytest
    pass


def _row(label: str, fn: Callable[[], float]) -> None:
    print(f"{label:<34} {fn() * 1e6:9.2f} us/message")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print(describe())
    print(f"redis-py {redis.__version__}; {n} messages per run, best of 3; specs: site + job")
    for b in BATCHES:
        _row(f"local acquire, batch {b}", lambda b=b: measure_local(n, b))
    if not redis_up():
        print(f"no Redis at {URL}: Redis rows skipped")
        sys.exit(0)
    client = redis.Redis.from_url(URL)
    print(f"Redis server {client.info('server')['redis_version']} at {URL}")
    client.close()
    for b in BATCHES:
        per_msg, trips = measure_redis(n if b > 1 else n // 4, b)
        print(
            f"{f'redis acquire, batch {b}':<34} {per_msg * 1e6:9.2f} us/message"
            f"   {trips:.3f} round trips/message"
        )
