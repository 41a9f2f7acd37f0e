"""What every benchmark script shares: the machine line, and its timer."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version


def _v(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "-"


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, mailsflux {_v('mailsflux')}, Cython {_v('cython')}, "
        f"cryptography {_v('cryptography')}, dkimpy {_v('dkimpy')}, aiosmtplib {_v('aiosmtplib')}"
    )


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
