"""Routing cost per message: a cached route vs a fresh MX lookup, and reply classification.

The question: does routing stay off the hot path? A fresh lookup (MX, then A
and AAAA per MX host, against a real DNS server on loopback, so no network
latency at all) is compared with the cached answer the scheduler gets for
every message after the first to a domain. Classification is timed over a
mix of real-world replies.

    .venv/bin/python -m pytest bench/bench_mx.py --benchmark-enable -p no:cacheprovider
    .venv/bin/python bench/bench_mx.py      # prints us/message and the ratio

Timings are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from tests._dns import DNSServer

from _machine import describe
from mailsflux.delivery.bounce import classify
from mailsflux.delivery.mx import MXResolver

DOMAINS = [f"d{i}.example" for i in range(200)]
ZONE: dict[str, Any] = {
    **{d: {"MX": ["10 mx1.hosting.example.", "20 mx2.hosting.example."]} for d in DOMAINS},
    "mx1.hosting.example": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
    "mx2.hosting.example": {"A": ["192.0.2.2"]},
}
REPLIES = [
    (550, "5.1.1 The email account that you tried to reach does not exist. - gsmtp"),
    (421, "4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of unsolicited mail."),
    (554, "delivery error: dd This user doesn't have a yahoo.com account (b@yahoo.com) [0]"),
    (450, "4.2.0 <b@example.com>: Recipient address rejected: Greylisted"),
    (550, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
    (451, "Temporary local problem - please try later"),
    (None, "TimeoutError: timed out"),
    (250, "2.0.0 OK"),
]


def time_lookups(server: DNSServer, n: int, cached: bool) -> float:
    """Mean seconds per resolve() over n calls."""
    resolver = MXResolver(nameservers=[server.address], timeout=1.0, lifetime=2.0)

    async def go() -> float:
        for d in DOMAINS:
            await resolver.resolve(d)
        start = time.perf_counter()
        for i in range(n):
            if not cached:
                resolver.clear()
            await resolver.resolve(DOMAINS[i % len(DOMAINS)])
        return (time.perf_counter() - start) / n

    return asyncio.run(go())


def classify_all() -> int:
    return sum(classify(code, text).permanent for code, text in REPLIES)


try:
    import pytest

    from conftest import RATIOS, RESULTS

    RATIOS.append(("fresh MX lookup / cached route", "mx_fresh_lookup", "mx_cached_route"))

    @pytest.fixture(scope="module")
    def dns_server() -> Any:
        with DNSServer(ZONE) as server:
            yield server

    @pytest.mark.benchmark(group="mx")
    def test_mx_cached_route(benchmark: Any, dns_server: DNSServer) -> None:
        mean = benchmark.pedantic(time_lookups, args=(dns_server, 2000, True), rounds=3)
        if benchmark.stats:
            RESULTS["mx_cached_route"] = mean

    @pytest.mark.benchmark(group="mx")
    def test_mx_fresh_lookup(benchmark: Any, dns_server: DNSServer) -> None:
        mean = benchmark.pedantic(time_lookups, args=(dns_server, 100, False), rounds=3)
        if benchmark.stats:
            RESULTS["mx_fresh_lookup"] = mean

    @pytest.mark.benchmark(group="bounce")
    def test_classify_reply_mix(benchmark: Any) -> None:
        assert benchmark(classify_all) == 3
        if benchmark.stats:
            RESULTS["classify_8_replies"] = benchmark.stats.stats.mean
except ImportError:  # run as a plain script without pytest
    pass


def _best(fn: Callable[[], float], rounds: int = 3) -> float:
    return min(fn() for _ in range(rounds))


if __name__ == "__main__":
    with DNSServer(ZONE) as server:
        cached = _best(lambda: time_lookups(server, 5000, True))
        fresh = _best(lambda: time_lookups(server, 200, False))
    start = time.perf_counter()
    for _ in range(2000):
        classify_all()
    per_reply = (time.perf_counter() - start) / (2000 * len(REPLIES))
    print(describe())
    print(f"cached route (resolve hit):         {cached * 1e6:9.2f} us/message")
    print(f"fresh lookup (MX + 3 address qs):   {fresh * 1e6:9.2f} us/message (loopback DNS)")
    print(f"ratio (fresh / cached):             {fresh / cached:9.1f}x")
    print(f"classify one reply:                 {per_reply * 1e6:9.2f} us/reply")
