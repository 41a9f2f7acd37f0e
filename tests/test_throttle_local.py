"""The in-process backend on a controllable clock: exact spacing and the GCRA bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.delivery import ConcurrencySpec, Grant, Lease, LocalThrottles, RateSpec

S = 1_000_000_000  # ns


class Clock:
    def __init__(self, start: int = 10 * S) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def test_burst_then_exact_spacing() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    spec = RateSpec("site:a", limit=4, burst=3, period=1.0)  # one per 250 ms
    assert t.acquire_now([spec], 10).granted == 3
    for _ in range(20):
        g = t.acquire_now([spec], 1)
        assert g.granted == 0
        assert 0 < g.retry_after <= 0.25
        wait = round(g.retry_after * 1e9)
        clock.now += wait - 1
        assert t.acquire_now([spec], 1).granted == 0  # one nanosecond early: still no
        clock.now += 1
        assert t.acquire_now([spec], 1).granted == 1  # on time: yes


def test_idle_refills_to_the_burst_and_no_further() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    spec = RateSpec("site:a", limit=10, burst=4, period=1.0)
    assert t.acquire_now([spec], 4).granted == 4
    clock.now += 3600 * S
    assert t.acquire_now([spec], 100).granted == 4


def test_partial_grant_retry_after_is_exact() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    spec = RateSpec("site:a", limit=10, burst=5, period=1.0)  # 100 ms apart
    g = t.acquire_now([spec], 8)
    assert (g.granted, g.retry_after, g.next_after) == (5, 0.3, 0.5)
    clock.now += 299_999_999
    assert t.acquire_now([spec], 3).granted == 2
    clock.now += 1
    g = t.acquire_now([spec], 1)
    assert g.granted == 1 and g.retry_after == 0.0


def test_next_after_paces_one_call_per_batch() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    spec = RateSpec("site:a", limit=100, burst=20, period=1.0)
    calls = sent = 0
    while sent < 2000:
        g = t.acquire_now([spec], 20)
        calls += 1
        sent += g.granted
        clock.now += round(g.next_after * 1e9)
    assert calls == 100


def test_pruning_keeps_semantics() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    busy = RateSpec("site:busy", limit=1, burst=1, period=3600)
    assert t.acquire_now([busy], 1).granted == 1
    for i in range(LocalThrottles.PRUNE_EVERY + 10):
        t.acquire_now([RateSpec(f"site:{i}", 1000, 1000)], 1)
        clock.now += 1_000_000  # each of these is idle again 1 ms later
    assert len(t._tat) < 100  # idle states dropped
    assert t.acquire_now([busy], 1).granted == 0  # the busy one kept its state


def test_leases_on_the_clock() -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock, lease_poll=10.0)
    spec = ConcurrencySpec("site:a", limit=1, ttl=2.0)

    async def go() -> None:
        a = await t.lease(spec, "h")
        assert isinstance(a, Lease)
        clock.now += S
        full = await t.lease(spec, "h")
        assert isinstance(full, Grant) and full.retry_after == 1.0
        assert await a.renew()  # now expires at +3 s
        clock.now += 2 * S - 1
        assert isinstance(await t.lease(spec, "h"), Grant)
        clock.now += 1  # expiry: reclaimed without release
        b = await t.lease(spec, "h")
        assert isinstance(b, Lease)
        assert not await a.renew()
        assert t.held(spec) == 1

    asyncio.run(go())


# -- the GCRA bound, for any sequence of calls -----------------------------------


def _bound_holds(events: Sequence[tuple[int, int]], spec: RateSpec) -> bool:
    """In every window [t_i, t_j]: granted <= burst + limit * (t_j - t_i) / period.

    Exact integers (ns): P*count <= burst*P + L*W. O(n): keep the best start.
    """
    per, lim = spec.period_us * 1000, spec.limit
    best_start = None  # max over i of (L*t_i - P*S_{i-1})
    total = 0
    for t, g in events:
        if g == 0:
            continue
        cand = lim * t - per * total
        best_start = cand if best_start is None else max(best_start, cand)
        total += g
        if per * total - lim * t + best_start > spec.burst * per:
            return False
    return True


specs_st = st.builds(
    RateSpec,
    name=st.sampled_from(["site:a", "job:b"]),
    limit=st.integers(1, 50),
    burst=st.integers(1, 30),
    period=st.sampled_from([0.001, 0.25, 1.0, 2.0, 7.0]),
)
step_st = st.tuples(
    st.integers(0, 3 * S),  # advance (ns)
    st.integers(0, 40),  # n
    st.booleans(),  # after a partial grant: wait exactly retry_after and ask for the rest
)


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(specs_st, min_size=1, max_size=2, unique_by=lambda s: s.name),
    steps=st.lists(step_st, min_size=1, max_size=80),
    advance_scale=st.sampled_from([1, 1000, 1_000_000]),
)
def test_granted_never_exceeds_rate_times_window_plus_burst(
    specs: list[RateSpec], steps: list[tuple[int, int, bool]], advance_scale: int
) -> None:
    clock = Clock()
    t = LocalThrottles(clock=clock)
    events: list[tuple[int, int]] = []
    min_burst = min(s.burst for s in specs)
    for advance, n, follow in steps:
        clock.now += advance // advance_scale
        g = t.acquire_now(specs, n)
        assert 0 <= g.granted <= n
        events.append((clock.now, g.granted))
        if g.granted < n:
            assert g.retry_after > 0
            # greedy: nothing more fits right now
            assert t.acquire_now(specs, 1).granted == 0
            if follow:
                clock.now += round(g.retry_after * 1e9)
                want = min(n - g.granted, min_burst)
                g2 = t.acquire_now(specs, want)
                assert g2.granted == want  # retry_after was enough
                events.append((clock.now, g2.granted))
        else:
            assert g.retry_after == 0.0
    for spec in specs:
        assert _bound_holds(events, spec), spec
