"""Question: how many messages per second does a whole job deliver?

(Render, track, DKIM-sign with RSA-2048, deliver: the example job.)

The full pipeline (compiled render, MIME, DKIM RSA-2048, aiosmtplib under
uvloop with reused connections) sending into Postfix's ``smtp-sink`` on
loopback, against the plain-Python pipeline doing the same work (string
substitution, stdlib ``email``, ``dkimpy``, ``aiosmtplib`` with the same
number of reused connections) into the same sink, in the same run.

    .venv/bin/python bench/bench_pipeline_sink.py [ROWS]
    .venv/bin/python -m pytest bench/bench_pipeline_sink.py --benchmark-enable

Needs ``smtp-sink`` (Debian package postfix; scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
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
from mailsflux._job import Relay
from mailsflux._run import Prepared, send

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


def run_mailsflux(job_path: Path, port: int) -> tuple[int, float]:
    prepared = Prepared.load(job_path)
    import uvloop

    summary = uvloop.run(
        send(prepared, Relay("127.0.0.1", port, "none"), on_problem=lambda p: None)
    )
    return summary.sent, summary.elapsed


def run_workers(job_path: Path, port: int, workers: int) -> tuple[int, float]:
    """The CLI with ``workers`` processes (each its own uvloop), timed from outside."""
    cmd = [sys.executable, "-m", "mailsflux", "send", str(job_path), "--json", "-q"]
    cmd += ["--workers", str(workers), "--relay", f"smtp+plain://127.0.0.1:{port}"]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return int(doc["sent"]), elapsed


def run_plain(job_path: Path, port: int, rows: int) -> tuple[int, float]:
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

    start = time.perf_counter()
    sent = asyncio.run(go())
    return sent, time.perf_counter() - start


def measure(rows: int, plain_rows: int) -> dict[str, float]:
    job = make_job(rows, connections=CONNECTIONS)
    cores = os.cpu_count() or 1
    with smtp_sink() as port:
        sent, elapsed = run_mailsflux(job, port)
        wsent, welapsed = run_workers(job, port, cores)
        psent, pelapsed = run_plain(job, port, plain_rows)
    return {
        "mailsflux_msgs": sent,
        "mailsflux_rate": sent / elapsed,
        "workers": cores,
        "workers_msgs": wsent,
        "workers_rate": wsent / welapsed,
        "plain_msgs": psent,
        "plain_rate": psent / pelapsed,
    }


def report(r: dict[str, float]) -> None:
    print(describe())
    print(f"connections: {CONNECTIONS}, RSA-2048 DKIM, smtp-sink on loopback")
    print(
        f"mailsflux pipeline:         {r['mailsflux_rate']:9.0f} messages/s"
        f" ({int(r['mailsflux_msgs'])} messages)"
    )
    print(
        f"stdlib email+dkimpy+aiosmtplib: {r['plain_rate']:5.0f} messages/s"
        f" ({int(r['plain_msgs'])} messages)"
    )
    print(
        f"mailsflux, {int(r['workers'])} processes:      {r['workers_rate']:9.0f} messages/s"
        f" ({int(r['workers_msgs'])} messages, wall time incl. process start)"
    )
    print(f"ratio, one process:         {r['mailsflux_rate'] / r['plain_rate']:9.1f}x")
    print(f"ratio, all cores:           {r['workers_rate'] / r['plain_rate']:9.1f}x")


try:
    import pytest

    @pytest.mark.skipif(smtp_sink_path() is None, reason="smtp-sink not installed")
    def test_pipeline_into_smtp_sink(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(3000, 300), rounds=1, iterations=1)
        report(result)
        assert result["mailsflux_msgs"] == 3000 and result["plain_msgs"] == 300
        assert result["workers_msgs"] == 3000
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    report(measure(n, max(n // 10, 100)))
