"""Question: does memory stay flat when nothing can be delivered?

A job of N rows (1,000,000 by default) into Postfix's ``smtp-sink`` told to
answer every RCPT TO with a 4xx (``-r rcpt``): every message is deferred
into the spool, signed bytes and all. One sending process; its peak RSS
(``ru_maxrss`` of the child) is the answer. The issue's bound: under 300 MB
at a million rows.

    .venv/bin/python bench/bench_spool_memory.py [ROWS]
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe
from bench_pipeline_sink import smtp_sink_path


def measure(rows: int) -> dict[str, Any]:
    exe = smtp_sink_path()
    if exe is None:
        raise FileNotFoundError("smtp-sink not found (install Debian's postfix)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen(
        [exe, "-u", "nobody", "-r", "rcpt", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
    )
    job = make_job(rows, connections=8, algorithm="ed25519-sha256")
    job.write_text(job.read_text().replace("attempts = 3", "attempts = 1", 1))
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory(prefix="mf-spool-mem-") as spool:
            env = {**os.environ, "MAILSFLUX_SPOOL": spool}
            cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "--json", "-q"]
            cmd += ["--workers", "1", "--relay", f"smtp+plain://127.0.0.1:{port}"]
            start = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if not out.stdout.strip():
                raise RuntimeError(out.stderr[-2000:])
            elapsed = time.perf_counter() - start
            size = sum(p.stat().st_size for p in Path(spool).iterdir())
    finally:
        sink.terminate()
        sink.wait(10)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "rows": rows,
        "deferred": doc["deferred"],
        "peak_mb": peak_kb / 1024,
        "elapsed": elapsed,
        "spool_mb": size / 1e6,
    }


def report(r: dict[str, Any]) -> None:
    print(describe())
    print(
        f"{r['rows']} rows, every RCPT answered 4xx: {r['deferred']} deferred into the spool"
        f" in {r['elapsed']:.0f} s; peak RSS {r['peak_mb']:.0f} MB; spool {r['spool_mb']:.0f} MB"
    )


if __name__ == "__main__":
    report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
