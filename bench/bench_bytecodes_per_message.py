"""Question: how many Python bytecodes does one message of a whole send cost, and where?

CPU time on a shared machine moves by a tenth from run to run, so a change
worth 1 or 2 % of a message cannot be seen in it. The count of bytecodes the
interpreter runs can: it does not depend on the machine's speed or load.
This runs ``mailsflux send --workers 1`` of the benchmark job
(:mod:`mailsflux.benchmark.sample`: tracking on, Ed25519, the spool on) into
a sink twice, with N and 2N rows, under a tracer that counts every bytecode
by function (``sys.settrace`` with ``f_trace_opcodes``); the difference over
N is what one more message costs, start-up left out. It prints the total
and the functions that cost the most, in bytecodes a message.

    .venv/bin/python bench/bench_bytecodes_per_message.py [N] [top]

To compare two builds, run it under each (``PYTHONPATH=/tmp/base-site``):
the counts repeat exactly for the same build (a few hundredths differ where
the event loop batches replies differently). Compiled code (``core/``) and
C libraries are not counted: callgrind counts those.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _machine import describe
from mailsflux.benchmark.sample import write_job
from mailsflux.benchmark.sinks import sink
from mailsflux.jobs import Prepared

_TRACER = Path(__file__).with_name("_optrace.py")


def _counts(rows: int, port: int, tmp: Path) -> dict[str, int]:
    job = write_job(tmp / f"job-{rows}", rows, algorithm="ed25519-sha256", spool="spool")
    Prepared.load(job).close()  # keys and tracking secrets: made before counting
    out = tmp / f"counts-{rows}.json"
    cmd = [sys.executable, str(_TRACER), str(out), "send", str(job), "--json", "-q"]
    cmd += ["--workers", "1", "--relay", f"smtp+plain://127.0.0.1:{port}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    if done.returncode != 0 or summary.get("sent") != rows:
        raise SystemExit(f"the send of {rows} rows failed: {done.stderr.strip()[-500:]}")
    counts: dict[str, int] = json.loads(out.read_text())
    return counts


def per_message(n: int) -> dict[str, float]:
    """Bytecodes one message costs, by function (``file:line:name``)."""
    with tempfile.TemporaryDirectory(prefix="mf-bench-ops-") as tmp, sink("auto") as server:
        one = _counts(n, server.port, Path(tmp))
        two = _counts(2 * n, server.port, Path(tmp))
    return {k: (two.get(k, 0) - one.get(k, 0)) / n for k in one.keys() | two.keys()}


def test_a_message_costs_bytecodes_in_the_send_path() -> None:
    got = per_message(20)
    total = sum(got.values())
    # Composing, sending and recording each row run Python code every message.
    assert total > 100, total
    for where in ("jobs/composer.py", "delivery/smtp.py", "jobs/journal.py"):
        assert any(where in k and v >= 1 for k, v in got.items()), where


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    print(describe())
    got = per_message(n)
    print(f"{n} and {2 * n} messages: {sum(got.values()):.1f} bytecodes a message in all")
    for k, v in sorted(got.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{v:9.1f} bytecodes/message  {k}")


if __name__ == "__main__":
    main()
