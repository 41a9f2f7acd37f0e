"""Question: what does a whole job cost per message, and how close is that to the floor?

(Render, track, DKIM-sign, deliver: the example job, into Postfix's
``smtp-sink`` on loopback.)

Reported as CPU time per message, summed over every process of the run
(``getrusage`` RUSAGE_SELF for in-process runs, RUSAGE_CHILDREN for the
multi-process CLI, which counts its workers), so one process and N
processes are compared fairly. Against it, in the same run:

- the plain-Python way doing the same work (string substitution, stdlib
  ``email``, ``dkimpy`` RSA-2048, ``aiosmtplib`` with as many reused
  connections; one process, and without link tracking, so it does less);
- the floor: one bare RSA-2048 and one bare Ed25519 signature
  (``cryptography``), which no DKIM-signed message can cost less than.

The sink's own CPU is not counted. Wall-clock rates are printed too.

    .venv/bin/python bench/bench_pipeline_sink.py [ROWS]
    .venv/bin/python -m pytest bench/bench_pipeline_sink.py --benchmark-enable

Needs ``smtp-sink`` (Debian package postfix; scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe
from _private import private_state
from mailsflux.benchmark import floor, plain
from mailsflux.benchmark import smtp_sink as _smtp_sink
from mailsflux.benchmark import smtp_sink_path as smtp_sink_path
from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send

CONNECTIONS = 8


@contextmanager
def smtp_sink() -> Iterator[int]:
    with _smtp_sink() as server:
        yield server.port


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_mailsflux(job_path: Path, port: int) -> tuple[int, float, float]:
    """One process, in this one: (sent, wall s, CPU s)."""
    import uvloop

    prepared = Prepared.load(job_path)
    cpu = _cpu(resource.RUSAGE_SELF)
    summary = uvloop.run(
        send(prepared, Relay("127.0.0.1", port, "none"), on_problem=lambda p: None)
    )
    prepared.close()
    return summary.sent, summary.elapsed, _cpu(resource.RUSAGE_SELF) - cpu


def run_workers(job_path: Path, port: int, workers: int, *extra: str) -> tuple[int, float, float]:
    """The CLI with ``workers`` processes (each its own uvloop), timed from
    outside: (sent, wall s incl. process start, CPU s of all its processes).
    Each run sends the whole job (``--restart``: an earlier run's spool
    records do not make it resume)."""
    cmd = [sys.executable, "-m", "mailsflux", "send", str(job_path), "--json", "-q", "--restart"]
    cmd += ["--workers", str(workers), "--relay", f"smtp+plain://127.0.0.1:{port}", *extra]
    cpu = _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return int(doc["sent"]), elapsed, _cpu(resource.RUSAGE_CHILDREN) - cpu


def run_plain(job_path: Path, port: int, rows: int) -> tuple[int, float, float]:
    """The plain-Python pipeline, in this process: (sent, wall s, CPU s)."""
    prepared = Prepared.load(job_path)
    job = prepared.job
    key = job.key_path.read_bytes()
    html_src = job.html_path.read_text()  # type: ignore[union-attr]
    text_src = job.text_path.read_text()  # type: ignore[union-attr]
    recipients = [r for r in prepared.recipients if not hasattr(r, "where")][:rows]

    def build(r: Any) -> tuple[str, str, bytes]:
        raw = plain.mime(
            sender=job.spec.message.sender,
            to=f"{r.vars['name']} <{r.email}>",
            subject=plain.subst(job.spec.message.subject, r.vars, False),
            text=plain.subst(text_src, r.vars, False),
            html=plain.subst(html_src, r.vars, True),
            domain="northwind.example",
        )
        signed = plain.dkim_sign(raw, key_pem=key, selector="mf2026", domain="northwind.example")
        return "hello@northwind.example", r.email, signed

    async def go() -> int:
        return await plain.aiosmtplib_send(
            "127.0.0.1", port, (build(r) for r in recipients), CONNECTIONS
        )

    cpu = _cpu(resource.RUSAGE_SELF)
    start = time.perf_counter()
    sent = asyncio.run(go())
    return sent, time.perf_counter() - start, _cpu(resource.RUSAGE_SELF) - cpu


def measure(rows: int, plain_rows: int) -> dict[str, float]:
    cores = os.cpu_count() or 1
    job = make_job(rows, connections=CONNECTIONS)
    ed_job = make_job(rows, connections=CONNECTIONS, algorithm="ed25519-sha256")
    for j in (job, ed_job):
        Prepared.load(j).close()  # keys and tracking config made before timing
    r: dict[str, float] = {"workers": cores}
    with smtp_sink() as port:
        for name, (sent, wall, cpu) in (
            ("one", run_mailsflux(job, port)),
            ("all", run_workers(job, port, cores)),
            ("ed_all", run_workers(ed_job, port, cores)),
            ("plain", run_plain(job, port, plain_rows)),
        ):
            r[f"{name}_msgs"], r[f"{name}_rate"], r[f"{name}_cpu"] = sent, sent / wall, cpu / sent
    # A bare sign of a message of the example's size (hashing it included).
    f = floor(b"x" * 7000)
    r["floor_rsa"], r["floor_ed25519"] = f["rsa2048_sign"] / 1e6, f["ed25519_sign"] / 1e6
    return r


def report(r: dict[str, float]) -> None:
    us = 1e6
    print(describe())
    print(f"example job, {CONNECTIONS} connections, smtp-sink on loopback; CPU of all processes")
    n = int(r["workers"])
    rows = [
        ("mailsflux, 1 process, RSA-2048", "one"),
        (f"mailsflux, {n} processes, RSA-2048", "all"),
        (f"mailsflux, {n} processes, Ed25519", "ed_all"),
        ("email + dkimpy + aiosmtplib, RSA-2048", "plain"),
    ]
    for label, k in rows:
        print(
            f"{label:<40} {r[k + '_cpu'] * us:8.0f} us CPU/msg {r[k + '_rate']:8.0f} msg/s"
            f" ({int(r[k + '_msgs'])} messages)"
        )
    print(f"{'floor: bare RSA-2048 sign':<40} {r['floor_rsa'] * us:8.0f} us CPU")
    print(f"{'floor: bare Ed25519 sign (as jobs sign)':<40} {r['floor_ed25519'] * us:8.1f} us CPU")
    print(
        f"CPU per message, plain / mailsflux ({n} processes): {r['plain_cpu'] / r['all_cpu']:.1f}x"
    )
    print(f"mailsflux RSA over its floor: {r['all_cpu'] / r['floor_rsa']:.2f}x the bare sign")
    print(
        f"mailsflux Ed25519 over its floor: +{(r['ed_all_cpu'] - r['floor_ed25519']) * us:.0f} us"
        " a message beyond the bare sign"
    )


try:
    import pytest

    @pytest.mark.skipif(smtp_sink_path() is None, reason="smtp-sink not installed")
    def test_pipeline_into_smtp_sink(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(3000, 300), rounds=1, iterations=1)
        report(result)
        assert result["one_msgs"] == result["all_msgs"] == result["ed_all_msgs"] == 3000
        assert result["plain_msgs"] == 300
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with private_state():
        report(measure(n, max(n // 10, 100)))
