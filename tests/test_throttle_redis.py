"""The Redis backend: round trips, script loading, server-clock spacing, faults."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mailsflux.delivery import ConcurrencySpec, RateSpec, RedisThrottles, ThrottleBackendError
from mailsflux.delivery.throttle_redis import GCRA_LUA, _Script
from mailsflux.errors import TemporaryDeliveryError
from tests._redis import CountingRedis, PrivateRedis, free_port

pytestmark = pytest.mark.redis


def test_round_trips_one_per_batch(redis_url: str, prefix: str) -> None:
    """N messages in batches of B cost N/B EVALSHA (+ one SCRIPT LOAD, once)."""
    site = RateSpec("site:rt.example", limit=1_000_000, burst=1000, period=1.0)
    job = RateSpec("job:rt", limit=1_000_000, burst=1000, period=1.0)

    async def go() -> None:
        for n_msgs, batch in [(2000, 20), (2000, 100), (200, 1)]:
            client = CountingRedis.from_url(redis_url)
            t = RedisThrottles(client, prefix=prefix)
            sent = 0
            while sent < n_msgs:
                sent += (await t.acquire([site, job], min(batch, n_msgs - sent))).granted
            assert sent == n_msgs
            assert client.calls == {"SCRIPT LOAD": 1, "EVALSHA": n_msgs // batch}
            assert sum(client.calls.values()) - 1 <= 0.05 * n_msgs or batch < 20
            await t.close()
            await client.aclose()

    asyncio.run(go())


def test_throttled_batches_paced_by_next_after_cost_one_call_each(
    redis_url: str, prefix: str
) -> None:
    """A scheduler that sleeps ``next_after`` gets a whole batch per call."""
    site = RateSpec("site:pace.example", limit=400, burst=20, period=1.0)

    async def go() -> None:
        client = CountingRedis.from_url(redis_url)
        t = RedisThrottles(client, prefix=prefix)
        sent, calls = 0, 0
        while sent < 300:
            g = await t.acquire([site], 20)
            calls += 1
            sent += g.granted
            # +1 ms: Redis TIME is the wall clock, asyncio sleeps on the monotonic one
            await asyncio.sleep(g.next_after + 0.001)
        assert sent == 300
        assert calls == 15  # 0.05 round trips per message
        assert client.calls["EVALSHA"] == calls
        await t.close()
        await client.aclose()

    asyncio.run(go())


def test_spacing_on_the_server_clock(redis_url: str, prefix: str) -> None:
    """Burst at once, then grants at least period/limit apart (Redis TIME, exact us)."""
    spec = RateSpec("site:space.example", limit=50, burst=3, period=1.0)  # 20 ms apart

    async def go() -> None:
        t = RedisThrottles(redis_url, prefix=prefix)
        first = await t.acquire([spec], 3)
        assert first.granted == 3
        times = [round(first.at * 1e6)]
        while len(times) < 15:
            g = await t.acquire([spec], 1)
            if g.granted:
                times.append(round(g.at * 1e6))
            else:
                assert 0 < g.retry_after <= 0.02
                await asyncio.sleep(g.retry_after)
        await t.close()
        # k-th grant after the burst comes no earlier than k intervals after the first
        for k, at in enumerate(times[1:], start=1):
            assert at - times[0] >= k * 20_000

    asyncio.run(go())


def test_noscript_reloads_and_retries(redis_url: str, prefix: str) -> None:
    spec = RateSpec("site:noscript.example", limit=10, burst=5, period=3600)

    async def go() -> None:
        client = CountingRedis.from_url(redis_url)
        t = RedisThrottles(client, prefix=prefix)
        # a script the server has never seen, which we believe loaded (as after SCRIPT FLUSH)
        t._gcra = _Script(GCRA_LUA + f"\n-- {uuid.uuid4().hex}\n")
        t._gcra.loaded = True
        assert (await t.acquire([spec], 2)).granted == 2
        assert client.calls == {"EVALSHA": 2, "SCRIPT LOAD": 1}
        assert (await t.acquire([spec], 2)).granted == 2
        assert client.calls["EVALSHA"] == 3
        await client.aclose()

    asyncio.run(go())


def test_unreachable_redis_is_a_temporary_error_never_a_grant() -> None:
    spec = RateSpec("site:down.example", limit=10, burst=5)

    async def go() -> None:
        t = RedisThrottles(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
        with pytest.raises(ThrottleBackendError) as info:
            await t.acquire([spec], 5)
        assert isinstance(info.value, TemporaryDeliveryError) and info.value.temporary
        with pytest.raises(ThrottleBackendError):
            await t.lease(ConcurrencySpec("site:down.example", 1), "h")
        await t.close()

    asyncio.run(go())


def test_redis_dying_mid_job_raises_instead_of_granting() -> None:
    try:
        server = PrivateRedis().start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    spec = RateSpec("site:dies.example", limit=1000, burst=100)

    async def go() -> None:
        t = RedisThrottles(server.url, timeout=0.5)
        try:
            assert (await t.acquire([spec], 10)).granted == 10
            lease = await t.lease(ConcurrencySpec("site:dies.example", 2), "h")
            server.stop()
            with pytest.raises(ThrottleBackendError):
                await t.acquire([spec], 10)
            with pytest.raises(ThrottleBackendError):
                await lease.renew()  # type: ignore[union-attr]
        finally:
            await t.close()

    try:
        asyncio.run(go())
    finally:
        server.stop()


def test_lease_set_layout(redis_url: str, prefix: str) -> None:
    spec = ConcurrencySpec("site:layout.example", limit=3, ttl=30)

    async def go() -> None:
        t = RedisThrottles(redis_url, prefix=prefix)
        lease = await t.lease(spec, "host-1:42")
        key = f"{prefix}:{{site:layout.example}}:conn:3"
        members = await t.client.zrange(key, 0, -1, withscores=True)
        assert [m.decode() for m, _ in members] == [lease.id]  # type: ignore[union-attr]
        assert members[0][1] == pytest.approx(lease.expires * 1e6)  # type: ignore[union-attr]
        assert 0 < await t.client.pttl(key) <= 31_000
        await lease.release()  # type: ignore[union-attr]
        assert await t.client.zcard(key) == 0
        await t.close()

    asyncio.run(go())
