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
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import dkim

sys.path.insert(0, str(Path(__file__).parent))

from _example import make_job
from _machine import describe
from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send

CONNECTIONS = 8


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )


@contextmanager
def smtp_sink() -> Iterator[int]:
    exe = smtp_sink_path()
    if exe is None:
        raise FileNotFoundError("smtp-sink not found (install Debian's postfix)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # -u nobody: smtp-sink refuses to keep root privileges.
    proc = subprocess.Popen(
        [exe, "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


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


def floor(key_pem: bytes) -> dict[str, float]:
    """CPU seconds of one bare signature over a SHA-256 digest-sized input."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    rsa_key = serialization.load_pem_private_key(key_pem, None)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    data = os.urandom(32)

    def per_call(fn: Any, n: int) -> float:
        fn()
        cpu = _cpu(resource.RUSAGE_SELF)
        for _ in range(n):
            fn()
        return (_cpu(resource.RUSAGE_SELF) - cpu) / n

    return {
        "rsa": per_call(lambda: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()), 400),
        "ed25519": per_call(lambda: ed_key.sign(data), 4000),
    }


def run_plain(job_path: Path, port: int, rows: int) -> tuple[int, float, float]:
    """The plain-Python pipeline, in this process: (sent, wall s, CPU s)."""
    import html as htmlmod
    import re

    prepared = Prepared.load(job_path)
    job = prepared.job
    key = job.key_path.read_bytes()
    html_src = job.html_path.read_text()  # type: ignore[union-attr]
    text_src = job.text_path.read_text()  # type: ignore[union-attr]
    tag = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
    section = re.compile(r"\{\{([#^])(\w+)\}\}(.*?)\{\{/\2\}\}", re.S)

    def subst(src: str, data: dict[str, str], escape: bool) -> str:
        src = section.sub(
            lambda m: m.group(3) if bool(data.get(m.group(2))) != (m.group(1) == "^") else "", src
        )
        return tag.sub(
            lambda m: (
                htmlmod.escape(data.get(m.group(1), "")) if escape else data.get(m.group(1), "")
            ),
            src,
        )

    recipients = [r for r in prepared.recipients if not hasattr(r, "where")][:rows]

    def build(r: Any) -> bytes:
        msg = EmailMessage()
        msg["From"] = job.spec.message.sender
        msg["To"] = f"{r.vars['name']} <{r.email}>"
        msg["Subject"] = subst(job.spec.message.subject, r.vars, False)
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain="northwind.example")
        msg.set_content(subst(text_src, r.vars, False))
        msg.add_alternative(subst(html_src, r.vars, True), subtype="html")
        raw = msg.as_bytes()
        return (
            dkim.sign(
                raw,
                b"mf2026",
                b"northwind.example",
                key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            )
            + raw
        )

    async def go() -> int:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=CONNECTIONS * 16)
        sent = 0

        async def worker() -> None:
            nonlocal sent
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
                while (item := await queue.get()) is not None:
                    await client.sendmail("hello@northwind.example", [item[0]], item[1])
                    sent += 1

        tasks = [asyncio.ensure_future(worker()) for _ in range(CONNECTIONS)]
        for r in recipients:
            if any(t.done() for t in tasks):
                break  # a worker failed: stop feeding, let gather raise its error
            await queue.put((r.email, build(r)))
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
        return sent

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
    f = floor(Prepared.load(job).job.key_path.read_bytes())
    r["floor_rsa"], r["floor_ed25519"] = f["rsa"], f["ed25519"]
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
    print(f"{'floor: bare Ed25519 sign':<40} {r['floor_ed25519'] * us:8.1f} us CPU")
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
    report(measure(n, max(n // 10, 100)))
