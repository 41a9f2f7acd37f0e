"""Question: how many received reports does `bounces parse` handle per second on one core?

The target (issue 14) is at least 2,000 reports/s. The corpus is the sample
set in tests/data/bounces (DSNs from Postfix, Sendmail, Office 365, Gmail and
Amazon SES; Exim, qmail, Yahoo and Exchange 2003 texts; ARF complaints;
auto-replies; a plain reply), parsed round-robin in one process, timed by
wall clock and by CPU time (RUSAGE_SELF); the best of five rounds.

    .venv/bin/python bench/bench_bounces_parse.py [REPORTS]
    .venv/bin/python -m pytest bench/bench_bounces_parse.py --benchmark-enable -p no:cacheprovider

Timings are printed, never asserted.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.feedback import parse_report

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "bounces"
REPORTS = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def parse_all() -> int:
    """Parse every sample once; the number of recipients found."""
    return sum(len(parse_report(data).recipients) for data in REPORTS)


def measure(n: int, rounds: int = 5) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) per report over ``n`` reports."""
    parse_all()  # warm up: regexes compiled, modules loaded
    wall_best = cpu_best = float("inf")
    for _ in range(rounds):
        cpu, wall = _cpu(), time.perf_counter()
        for i in range(n):
            parse_report(REPORTS[i % len(REPORTS)])
        wall_best = min(wall_best, (time.perf_counter() - wall) / n)
        cpu_best = min(cpu_best, (_cpu() - cpu) / n)
    return wall_best, cpu_best


try:
    import pytest

    from conftest import RESULTS

    @pytest.mark.benchmark(group="bounces")
    def test_parse_corpus(benchmark: Any) -> None:
        assert benchmark(parse_all) >= len(REPORTS) - 1
        if benchmark.stats:
            RESULTS["bounces_parse_per_report"] = benchmark.stats.stats.mean / len(REPORTS)
except ImportError:  # run as a plain script without pytest
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    wall, cpu = measure(n)
    size = sum(map(len, REPORTS)) / len(REPORTS)
    print(describe())
    print(f"corpus: {len(REPORTS)} reports, mean {size / 1024:.1f} KiB; {n} parsed per round")
    print(f"parse one report:   {wall * 1e6:9.1f} us wall, {cpu * 1e6:9.1f} us CPU")
    print(f"throughput:         {1 / wall:9.0f} reports/s on one core (target >= 2000)")
