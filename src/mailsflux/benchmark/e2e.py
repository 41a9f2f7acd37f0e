"""``mailsflux bench e2e``: a whole job through ``mailsflux send`` into a sink.

The same path a user's job takes (``python -m mailsflux send JOB --workers 0``:
every core), timed from outside. CPU time is that of the send process and
its workers (``RUSAGE_CHILDREN`` of this process, taken around the run; the
sink is not reaped until afterwards, so its CPU is not counted). Next to
it, measured in the same run: the floor for a message of the same size.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux.benchmark.floors import floor
from mailsflux.benchmark.result import BenchError, new_result
from mailsflux.benchmark.sample import signed_messages, write_job
from mailsflux.benchmark.sinks import sink
from mailsflux.jobs import Prepared

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_e2e(
    messages: int,
    *,
    algorithm: str = "rsa-sha256",
    workers: int = 0,
    connections: int = 8,
    sink_kind: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    if messages < 1:
        raise BenchError("--messages must be at least 1")
    if algorithm not in ALGORITHMS:
        raise BenchError(f"--algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    with tempfile.TemporaryDirectory(prefix="mf-bench-e2e-") as tmp:
        job = write_job(Path(tmp) / "job", messages, algorithm=algorithm, connections=connections)
        # Keys and tracking secrets are made on first use: before the clock.
        Prepared.load(job).close()
        with sink(sink_kind) as server:
            cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "--json", "-q"]
            cmd += ["--workers", str(workers), "--relay", f"smtp+plain://127.0.0.1:{server.port}"]
            cpu0 = _children_cpu()
            start = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            cpu = _children_cpu() - cpu0
        lines = out.stdout.strip().splitlines()
        try:
            summary = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            err = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"mailsflux send failed (status {out.returncode}): {err}") from None
    if progress is not None:
        progress(messages)
    sample = signed_messages(1, algorithm=algorithm)[0].data
    f = floor(sample)
    sent = int(summary.get("sent", 0))
    result = new_result(
        "e2e",
        {
            "messages": messages,
            "algorithm": algorithm,
            "workers": workers or "all cores",
            "connections": connections,
            "sink": server.kind,
            "tracking": True,
        },
    )
    per_msg = cpu / max(sent, 1) * 1e6
    own_floor = f["rsa2048_sign"] if algorithm == "rsa-sha256" else f["ed25519_sign"]
    result["metrics"] = {
        "sent": sent,
        "elapsed_s": round(elapsed, 3),
        "throughput_msg_s": round(sent / elapsed, 1),
        "cpu_us_per_msg": round(per_msg, 1),
        "floor_us": {k: round(v, 2) for k, v in f.items()},
        "over_floor_x": round(per_msg / own_floor, 2),
        "beyond_floor_us_per_msg": round(per_msg - own_floor, 1),
        "message_bytes": len(sample),
    }
    if server.tally:
        result["metrics"]["sink_messages"] = server.tally.get("messages", 0)
    if sent != messages:
        result["notes"].append(f"only {sent} of {messages} messages sent: {summary}")
    result["notes"].append("wall time includes starting the processes")
    return result
