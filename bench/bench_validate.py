"""Question: how fast does `validate` check a job, next to composing it for `send`?

``validate`` renders every row and checks its headers but builds no MIME
body and signs nothing; ``send`` composes the whole message (render, link
tracking, MIME, DKIM RSA-2048). Both on the example job, in one process,
timed by wall clock and by CPU time (RUSAGE_SELF).

    .venv/bin/python bench/bench_validate.py [ROWS]
    .venv/bin/python -m pytest bench/bench_validate.py --benchmark-enable
"""

from __future__ import annotations

import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe
from mailsflux.jobs import Prepared, validate


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(rows, wall seconds, CPU seconds) of one call."""
    cpu, wall = _cpu(), time.perf_counter()
    rows = fn()
    return rows, time.perf_counter() - wall, _cpu() - cpu


def measure(rows: int, compose_rows: int) -> dict[str, float]:
    job = make_job(rows)
    prepared = Prepared.load(job)  # creates the key and tracking config validate checks

    def run_validate() -> int:
        problems = validate(job)
        assert not [p for p in problems if p.severity == "error"], problems[:3]
        return rows

    def run_compose() -> int:
        n = 0
        for _ in prepared.messages(lambda p: None):
            n += 1
            if n == compose_rows:
                break
        return n

    try:
        v_rows, v_wall, v_cpu = timed(run_validate)
        c_rows, c_wall, c_cpu = timed(run_compose)
    finally:
        prepared.close()
        shutil.rmtree(job.parent.parent, ignore_errors=True)
    return {
        "validate_rows": v_rows,
        "validate_wall": v_wall,
        "validate_cpu": v_cpu,
        "compose_rows": c_rows,
        "compose_wall": c_wall,
        "compose_cpu": c_cpu,
    }


def report(r: dict[str, float]) -> None:
    print(describe())
    for what, label in (
        ("validate", "validate (render + checks)"),
        ("compose", "send-side compose"),
    ):
        n, wall, cpu = r[f"{what}_rows"], r[f"{what}_wall"], r[f"{what}_cpu"]
        print(
            f"{label:<28} {n:>9.0f} rows  {n / wall:>9.0f} rows/s  {cpu:7.2f} s CPU"
            f"  {cpu / n * 1e6:7.1f} us CPU/row"
        )


try:
    import pytest  # noqa: F401

    def test_validate_and_compose(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(5000, 500), rounds=1, iterations=1)
        report(result)
        assert result["validate_rows"] == 5000 and result["compose_rows"] == 500
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    report(measure(n, min(n, 5000)))
