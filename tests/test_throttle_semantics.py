"""GCRA and lease semantics, the same tests against every backend.

Backends: in-process, Redis (one script per acquire) and Redis with the
cluster-style split path (one script per name, surplus refunded). Rates use
a period of an hour, so the time between two calls (milliseconds) moves
nothing by a whole token and the expected numbers are exact.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from mailsflux.delivery import (
    ConcurrencySpec,
    Grant,
    Lease,
    LocalThrottles,
    RateSpec,
    RedisThrottles,
    ThrottleBackendError,
    Throttles,
)
from mailsflux.errors import ConfigError, TemporaryDeliveryError

HOUR = 3600.0
Make = Callable[[], Awaitable[Any]]


def _cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(
    params=[
        "local",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-split", marks=pytest.mark.redis),
    ]
)
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """A factory for a fresh backend (called inside the test's event loop)."""
    if request.param == "local":

        async def local() -> Any:
            return LocalThrottles()

        yield local
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"mftest{uuid.uuid4().hex[:10]}"
    split = request.param == "redis-split"

    async def remote() -> Any:
        return RedisThrottles(url, prefix=prefix, split=split)

    yield remote
    _cleanup(url, prefix)


def run(make: Make, body: Callable[[Any], Awaitable[None]]) -> None:
    async def go() -> None:
        t = await make()
        try:
            await body(t)
        finally:
            await t.close()

    asyncio.run(go())


def name() -> str:
    return f"site:{uuid.uuid4().hex[:8]}.example"


# -- rates ------------------------------------------------------------------------


def test_backends_satisfy_the_protocol(make: Make) -> None:
    async def body(t: Any) -> None:
        assert isinstance(t, Throttles)

    run(make, body)


def test_burst_at_once_then_one_per_interval(make: Make) -> None:
    spec = RateSpec(name(), limit=10, burst=5, period=HOUR)  # one per 360 s

    async def body(t: Any) -> None:
        g = await t.acquire([spec], 5)
        assert (g.granted, g.retry_after) == (5, 0.0)
        assert g.next_after == pytest.approx(5 * 360.0)
        g = await t.acquire([spec], 1)
        assert g.granted == 0
        assert 359.0 < g.retry_after <= 360.0

    run(make, body)


def test_partial_grant_says_when_the_rest_fits(make: Make) -> None:
    spec = RateSpec(name(), limit=10, burst=5, period=HOUR)

    async def body(t: Any) -> None:
        g = await t.acquire([spec], 8)
        # 5 now; the other 3 need 3 more intervals (decided at the same instant: exact).
        assert g.granted == 5
        assert g.retry_after == pytest.approx(3 * 360.0, abs=1e-6)
        assert g.next_after == pytest.approx(5 * 360.0, abs=1e-6)
        # A batch larger than the burst can never fit whole: the wait is capped at the burst.
        g = await t.acquire([spec], 100)
        assert g.granted == 0
        assert 5 * 360.0 - 1 < g.retry_after <= 5 * 360.0

    run(make, body)


def test_the_lower_limit_wins_and_both_are_charged(make: Make) -> None:
    site = RateSpec(name(), limit=10, burst=5, period=HOUR)
    job = RateSpec(f"job:{uuid.uuid4().hex[:8]}", limit=100, burst=50, period=HOUR)

    async def body(t: Any) -> None:
        g = await t.acquire([site, job], 20)
        assert g.granted == 5
        # the rest waits on the site: 5 more tokens (its burst) = 5 site intervals
        assert g.retry_after == pytest.approx(5 * 360.0, abs=1e-3)
        # the job was charged exactly the granted 5 (one job token takes 36 s)
        g = await t.acquire([job], 50)
        assert g.granted == 45

    run(make, body)


def test_job_limit_lower_than_site(make: Make) -> None:
    site = RateSpec(name(), limit=100, burst=50, period=HOUR)
    job = RateSpec(f"job:{uuid.uuid4().hex[:8]}", limit=10, burst=3, period=HOUR)

    async def body(t: Any) -> None:
        assert (await t.acquire([site, job], 20)).granted == 3
        assert (await t.acquire([site], 50)).granted == 47

    run(make, body)


def test_all_or_nothing_when_one_spec_is_exhausted(make: Make) -> None:
    site = RateSpec(name(), limit=10, burst=5, period=HOUR)
    job = RateSpec(f"job:{uuid.uuid4().hex[:8]}", limit=100, burst=50, period=HOUR)

    async def body(t: Any) -> None:
        assert (await t.acquire([site], 5)).granted == 5
        for _ in range(3):
            g = await t.acquire([job, site], 10)
            assert g.granted == 0 and g.retry_after > 0
        # nothing was taken from the job while the site said no
        assert (await t.acquire([job], 50)).granted == 50

    run(make, body)


def test_surplus_of_a_looser_spec_is_not_charged(make: Make) -> None:
    # The site could give 5, the job only 2: the site must be charged 2, not 5.
    site = RateSpec(name(), limit=10, burst=5, period=HOUR)
    job = RateSpec(f"job:{uuid.uuid4().hex[:8]}", limit=100, burst=50, period=HOUR)

    async def body(t: Any) -> None:
        assert (await t.acquire([job], 48)).granted == 48
        assert (await t.acquire([site, job], 5)).granted == 2
        assert (await t.acquire([site], 5)).granted == 3

    run(make, body)


def test_keys_carry_their_parameters(make: Make) -> None:
    n = name()
    old = RateSpec(n, limit=10, burst=5, period=HOUR)
    new = RateSpec(n, limit=20, burst=5, period=HOUR)

    async def body(t: Any) -> None:
        assert (await t.acquire([old], 5)).granted == 5
        assert (await t.acquire([old], 1)).granted == 0
        # a changed limit is a new key: the old state does not leak into it
        assert (await t.acquire([new], 5)).granted == 5
        if isinstance(t, RedisThrottles):
            assert await t.client.exists(f"{t.prefix}:{{{n}}}:gcra:10:5:3600") == 1
            assert await t.client.exists(f"{t.prefix}:{{{n}}}:gcra:20:5:3600") == 1

    run(make, body)


def test_edge_arguments(make: Make) -> None:
    spec = RateSpec(name(), limit=10, burst=5, period=HOUR)

    async def body(t: Any) -> None:
        assert (await t.acquire([spec], 0)).granted == 0
        assert (await t.acquire([], 7)).granted == 7  # nothing limits: all granted
        with pytest.raises(ValueError):
            await t.acquire([spec], -1)
        # the same spec listed twice is charged once
        assert (await t.acquire([spec, spec], 3)).granted == 3
        assert (await t.acquire([spec], 5)).granted == 2

    run(make, body)


# -- leases -----------------------------------------------------------------------


def test_lease_limit_release_and_renew(make: Make) -> None:
    spec = ConcurrencySpec(name(), limit=2, ttl=30.0)

    async def body(t: Any) -> None:
        a = await t.lease(spec, "worker-1")
        b = await t.lease(spec, "worker-1")
        assert isinstance(a, Lease) and isinstance(b, Lease) and a.id != b.id
        assert a.id.startswith("worker-1#")
        full = await t.lease(spec, "worker-2")
        assert isinstance(full, Grant) and full.granted == 0
        assert 0 < full.retry_after <= t.lease_poll
        before = a.expires
        await asyncio.sleep(0.002)
        assert await a.renew()
        assert a.expires > before
        await a.release()
        await a.release()  # idempotent
        assert not await a.renew()
        c = await t.lease(spec, "worker-2")
        assert isinstance(c, Lease)
        async with c:
            assert isinstance(await t.lease(spec, "worker-3"), Grant)
        d = await t.lease(spec, "worker-3")
        assert isinstance(d, Lease)
        held = t.held(spec)
        assert (await held if asyncio.iscoroutine(held) else held) == 2

    run(make, body)


def test_lease_expires_when_not_renewed(make: Make) -> None:
    spec = ConcurrencySpec(name(), limit=1, ttl=0.2)

    async def body(t: Any) -> None:
        a = await t.lease(spec, "crashy")
        assert isinstance(a, Lease)
        assert isinstance(await t.lease(spec, "other"), Grant)
        await asyncio.sleep(0.3)  # at least the TTL passes on every clock
        b = await t.lease(spec, "other")
        assert isinstance(b, Lease)
        assert not await a.renew()  # lost, and renewing does not take it back
        assert isinstance(await t.lease(spec, "third"), Grant)

    run(make, body)


# -- specs ------------------------------------------------------------------------


def test_spec_keys_and_parsing() -> None:
    s = RateSpec.site("Gmail.com", 100, 20, 1)
    assert s.key == "site:gmail.com:100:20:1"
    assert s.redis_key() == "mf:{site:gmail.com}:gcra:100:20:1"
    assert RateSpec.parse("site:gmail.com:100:20:1") == s
    assert RateSpec.parse("job:welcome:5:1:0.5").redis_key("x") == "x:{job:welcome}:gcra:5:1:0.5"
    assert RateSpec.job("welcome", 5, 2).interval == pytest.approx(0.2)
    c = ConcurrencySpec.site("gmail.com", 10)
    assert (c.key, c.redis_key()) == ("site:gmail.com:10", "mf:{site:gmail.com}:conn:10")


@pytest.mark.parametrize(
    "text",
    [
        "site:a:0:1:1",
        "site:a:1:0:1",
        "site:a:1:1:0",
        "site:a:1:1:nan",
        "a:1:1",
        "si{te:1:1:1",
        ":1:1:1",
    ],
)
def test_bad_specs_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        RateSpec.parse(text)


def test_backend_error_is_temporary() -> None:
    err = ThrottleBackendError("down")
    assert isinstance(err, TemporaryDeliveryError) and err.temporary
