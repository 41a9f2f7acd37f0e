"""Question: what does the spool add to a whole job's CPU per message?

The CLI's whole-job path (the example job, every core, into Postfix's
``smtp-sink``) with the spool (the default: every result committed per
batch) and with ``--no-spool``, RSA-2048 and Ed25519, in the same run,
alternating the order each round so drift in the machine's load falls on
both. CPU time of all processes per message (RUSAGE_CHILDREN); the median
of the rounds. The issue's budget: at most 10 % more.

    .venv/bin/python bench/bench_spool.py [ROWS] [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe
from bench_pipeline_sink import run_workers, smtp_sink, smtp_sink_path


def measure(rows: int, rounds: int) -> dict[str, float]:
    cores = os.cpu_count() or 1
    out: dict[str, float] = {"workers": cores, "rows": rows}
    with smtp_sink() as port, tempfile.TemporaryDirectory(prefix="mf-spool-") as spool:
        os.environ["MAILSFLUX_SPOOL"] = spool
        for alg, tag in (("rsa-sha256", "rsa"), ("ed25519-sha256", "ed")):
            job = make_job(rows, connections=8, algorithm=alg)
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            for r in range(rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for mode in order:
                    extra = ("--no-spool",) if mode == "off" else ()
                    sent, _, used = run_workers(job, port, cores, *extra)
                    assert sent == rows, (mode, sent)
                    cpu[mode].append(used / rows)
            out[f"{tag}_on"] = statistics.median(cpu["on"])
            out[f"{tag}_off"] = statistics.median(cpu["off"])
    return out


def report(r: dict[str, float]) -> None:
    print(describe())
    n, rows = int(r["workers"]), int(r["rows"])
    print(f"example job, {rows} rows, {n} processes, smtp-sink on loopback; CPU of all processes")
    for label, tag in (("RSA-2048", "rsa"), ("Ed25519", "ed")):
        on, off = r[f"{tag}_on"] * 1e6, r[f"{tag}_off"] * 1e6
        print(
            f"{label:<9} without spool {off:7.0f} us CPU/msg   with spool {on:7.0f} us CPU/msg"
            f"   spool costs {on - off:+6.1f} us ({(on / off - 1) * 100:+.1f} %)"
        )


try:
    import pytest

    @pytest.mark.skipif(smtp_sink_path() is None, reason="smtp-sink not installed")
    def test_spool_overhead(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(400, 1), rounds=1, iterations=1)
        report(result)
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    report(measure(n, rounds))
