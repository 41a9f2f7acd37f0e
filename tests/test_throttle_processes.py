"""Separate processes sharing one Redis throttle.

Two senders acquire as fast as they can for a few seconds; the combined
grants, on the server's clock (each grant's ``at`` is the Redis ``TIME`` of
the decision, in exact microseconds), never exceed ``burst + limit * W /
period`` in any window ``W``: no tolerance above the limit. A holder that
dies without releasing its lease loses it when the TTL runs out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis

from mailsflux.delivery import RateSpec

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent
SITE = RateSpec("site:shared.example", limit=200, burst=10, period=1.0)
JOB = RateSpec("job:shared", limit=300, burst=40, period=1.0)

SENDER = """
import asyncio, json, sys, time
from mailsflux.delivery import RateSpec, RedisThrottles

url, prefix = sys.argv[1], sys.argv[2]
start, seconds, batch = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
specs = [RateSpec.parse(s) for s in sys.argv[6:]]

async def main():
    t = RedisThrottles(url, prefix=prefix)
    await t.acquire(specs, 0)
    while time.time() < start:
        await asyncio.sleep(0.001)
    grants, calls = [], 0
    while time.time() < start + seconds:
        g = await t.acquire(specs, batch)
        calls += 1
        if g.granted:
            grants.append((round(g.at * 1e6), g.granted))
    await t.close()
    print(json.dumps({"grants": grants, "calls": calls}))

asyncio.run(main())
"""

HOLDER = """
import asyncio, os, sys
from mailsflux.delivery import ConcurrencySpec, Lease, RedisThrottles

async def main():
    t = RedisThrottles(sys.argv[1], prefix=sys.argv[2])
    lease = await t.lease(ConcurrencySpec("site:crash.example", 1, ttl=0.5), "doomed")
    print(lease.id if isinstance(lease, Lease) else "FULL", flush=True)
    os._exit(0)  # dies holding the lease: no release, no renew

asyncio.run(main())
"""


def worst_excess(events: Sequence[tuple[int, int]], spec: RateSpec) -> int:
    """max over windows of P*count - L*W - burst*P (<= 0 when the bound holds), in us."""
    per, lim = spec.period_us, spec.limit
    worst = -(10**18)
    best_start: int | None = None
    total = 0
    for t, g in sorted(events):
        cand = lim * t - per * total
        best_start = cand if best_start is None else max(best_start, cand)
        total += g
        worst = max(worst, per * total - lim * t + best_start - spec.burst * per)
    return worst


def server_time_us(client: redis.Redis) -> int:
    sec, usec = client.time()
    return int(sec) * 1_000_000 + int(usec)


def test_two_processes_never_exceed_limit_plus_burst(redis_url: str, prefix: str) -> None:
    seconds = 3.0
    client = redis.Redis.from_url(redis_url)
    begin = server_time_us(client)
    start = time.time() + 1.5  # both are connected and waiting by then
    argv = [redis_url, prefix, repr(start), repr(seconds), "5", SITE.key, JOB.key]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, *argv], stdout=subprocess.PIPE, cwd=ROOT, text=True
        )
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    end = server_time_us(client)
    client.close()

    per_proc = [[tuple(e) for e in o["grants"]] for o in outs]
    events: list[tuple[int, int]] = [e for grants in per_proc for e in grants]  # type: ignore[misc]
    total = sum(g for _, g in events)
    # both competed and got some; more than one burst, so the spacing was exercised
    assert all(sum(g for _, g in grants) > 0 for grants in per_proc)
    assert total > SITE.burst
    # every window, on the server clock: at most burst + limit * W / period (exact)
    for spec in (SITE, JOB):
        assert worst_excess(events, spec) <= 0, spec
    # and the whole run, bracketed by server TIME before start and after the end
    assert total * SITE.period_us <= SITE.burst * SITE.period_us + SITE.limit * (end - begin)
    calls = sum(o["calls"] for o in outs)
    print(f"\n{total} granted in {calls} calls over {(end - begin) / 1e6:.2f} s (server clock)")


def test_a_crashed_holders_lease_expires(redis_url: str, prefix: str) -> None:
    import asyncio

    from mailsflux.delivery import ConcurrencySpec, Grant, Lease, RedisThrottles

    out = subprocess.run(
        [sys.executable, "-c", HOLDER, redis_url, prefix],
        capture_output=True,
        cwd=ROOT,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert out.startswith("doomed#")
    spec = ConcurrencySpec("site:crash.example", 1, ttl=0.5)

    async def go() -> None:
        t = RedisThrottles(redis_url, prefix=prefix, lease_poll=10.0)
        full = await t.lease(spec, "survivor")
        if isinstance(full, Grant):  # still held by the dead process
            assert full.granted == 0 and 0 < full.retry_after <= 0.5
            await asyncio.sleep(full.retry_after + 0.01)
            lease = await t.lease(spec, "survivor")
        else:  # the child took long enough to exit that it had already expired
            lease = full
        assert isinstance(lease, Lease)
        assert await t.held(spec) == 1
        await t.close()

    asyncio.run(go())


def test_worst_excess_catches_an_over_send() -> None:
    spec = RateSpec("site:x", limit=10, burst=2, period=1.0)  # 100 ms apart
    ok = [(0, 2), (100_000, 1), (200_000, 1)]
    assert worst_excess(ok, spec) <= 0
    assert worst_excess([*ok, (250_000, 1)], spec) > 0
