"""Question: does the job reader's memory stay flat as the recipient file grows?

Runs ``mailsflux validate`` (every row read, de-duplicated, rendered and
checked) on the example job with N distinct recipients, in a child process,
and reports that process's peak RSS (its VmHWM). The CSV is generated
in a temp dir and removed afterwards. For contrast, the peak RSS of a
process that only keeps the same addresses in a Python ``set`` (what the
reader did before).

    .venv/bin/python bench/bench_reader_memory.py [ROWS ...]   # default 1000000 10000000
    .venv/bin/python -m pytest bench/bench_reader_memory.py --benchmark-enable
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe

SET_BASELINE = """
import csv, sys
seen = set()
with open(sys.argv[1], newline="", encoding="utf-8") as fh:
    for row in csv.reader(fh):
        seen.add(row[0].lower())
status = open("/proc/self/status").read()
print(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")))
"""


def peak_rss(cmd: list[str]) -> tuple[int, float, int]:
    """(peak RSS in bytes, wall seconds, exit status) of one child process.

    Read from the child's own VmHWM while it runs: rusage's ru_maxrss would
    count the parent's RSS at fork, which Linux carries across exec.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return peak, time.perf_counter() - start, proc.returncode


def measure(rows: int, baseline: bool = True) -> dict[str, float]:
    job = make_job(rows)
    try:
        make_job_ready(job)  # the key and tracking config, so validate finds no error
        rss, wall, code = peak_rss([sys.executable, "-m", "mailsflux", "validate", str(job)])
        out: dict[str, float] = {"rows": rows, "rss": rss, "wall": wall, "exit": code}
        if baseline:
            csv_path = str(job.parent / "recipients.csv")
            done = subprocess.run(
                [sys.executable, "-c", SET_BASELINE, csv_path], capture_output=True, check=True
            )
            out["set_rss"] = int(done.stdout) * 1024
        return out
    finally:
        shutil.rmtree(job.parent.parent, ignore_errors=True)


def make_job_ready(job: Path) -> None:
    """Create the job's key and tracking config without reading its rows."""
    from mailsflux.jobs import Prepared

    Prepared.load(job).close()


def report(r: dict[str, float]) -> None:
    line = (
        f"{int(r['rows']):>11,} rows: validate peak RSS {r['rss'] / 1e6:7.1f} MB"
        f" ({r['wall']:.0f} s, exit {int(r['exit'])})"
    )
    if "set_rss" in r:
        line += f"; a set of the addresses alone: {r['set_rss'] / 1e6:7.1f} MB"
    print(line, flush=True)


try:
    import pytest  # noqa: F401

    def test_reader_memory(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(20_000,), rounds=1, iterations=1)
        report(result)
        assert result["exit"] == 0 and result["rss"] > 0
except ImportError:
    pass


if __name__ == "__main__":
    print(describe())
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    for n in sizes:
        report(measure(n, baseline=n <= 1_000_000))
