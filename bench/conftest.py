from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from _private import private_state


@pytest.fixture(autouse=True)
def private_spool_and_home() -> Iterator[None]:
    """Each benchmark's jobs and engines keep their spool and data in folders
    of their own (subprocesses inherit the variables), never in the user's
    ~/.local/state: bench_engine and bench_pipeline_sink wrote their fake
    recipients there on every run, CI's included."""
    with private_state():
        yield


#: Mean seconds per call, by benchmark name, filled in by the benchmarks.
RESULTS: dict[str, float] = {}
#: (question, numerator name, denominator name) pairs to print as ratios.
RATIOS: list[tuple[str, str, str]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    w = terminalreporter
    w.section("mailsflux benchmark ratios")
    w.line(describe())
    for name, mean in sorted(RESULTS.items()):
        w.line(f"  {name:<40} {mean * 1e6:10.1f} us/message")
    for question, slow, fast in RATIOS:
        if slow in RESULTS and fast in RESULTS:
            w.line(f"  {question}: {RESULTS[slow] / RESULTS[fast]:.1f}x ({slow} / {fast})")
