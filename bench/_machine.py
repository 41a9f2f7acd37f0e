"""What every benchmark script shares: the machine line, and its timer."""

from __future__ import annotations

import time
from collections.abc import Callable

from mailsflux.benchmark.machine import describe

__all__ = ["best_of", "describe"]


def best_of(fn: Callable[[], object], n: int, *, rounds: int = 5, warmup: int = 1) -> float:
    """Seconds per call: the best of ``rounds`` runs of ``n`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best
