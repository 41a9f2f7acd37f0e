"""Question: how many messages per second does SMTP submission accept durably?

C concurrent aiosmtplib clients (each one connection: STARTTLS, AUTH, then
``sendmail()`` in a loop) submit N ~3 KB messages, one recipient each, in
a process of their own (uvloop), so the server process has its core. Timed
from the first MAIL to the last 250: a 250 from Mailsflux means the gateway
DKIM-signed the message and stored it in the spool, where delivery picks it
up (into a counting aiosmtpd server on loopback, running meanwhile).

Against it, in the same run, the plain way: a minimal aiosmtpd handler
(STARTTLS, no AUTH) that writes each message to a file of its own before it
answers 250 (no fsync; the spool does not fsync each commit either).

Issue 13's target: at least 1,500 messages/s on this 2-core machine.

    .venv/bin/python bench/bench_submission.py [N] [C]
    .venv/bin/python -m pytest bench/bench_submission.py --benchmark-enable
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from _machine import describe
from tests._submission import Tenant, mailsflux_submission
from tests._tls import server_context

N = 10_000
CLIENTS = 16


def message(sender: str, i: int) -> tuple[str, bytes]:
    """The ``i``-th message: about 3 KB of text, one recipient."""
    rcpt = f"user.{i}@example.org"
    msg = EmailMessage()
    msg["From"] = f"Northwind <{sender}>"
    msg["To"] = rcpt
    msg["Subject"] = f"Your order {100000 + i} has shipped"
    msg["Date"] = formatdate(1767225600)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    para = (
        f"Hello customer {i}, your parcel is on its way. Track it any time from your "
        "account page; it should arrive within two working days. Thank you for "
        "shopping with Northwind.\n\n"
    )
    msg.set_content(para * 14)
    return rcpt, msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@dataclass
class Target:
    port: int
    ca_file: str
    sender: str
    username: str | None = None
    password: str | None = None


async def _submit(t: Target, n: int, clients: int) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=t.ca_file)
    messages = [message(t.sender, i) for i in range(n)]
    conns = []
    for _ in range(clients):
        c = aiosmtplib.SMTP(
            hostname="localhost", port=t.port, tls_context=ctx, start_tls=True, timeout=60
        )
        await c.connect()
        if t.username is not None:
            await c.login(t.username, t.password or "")
        conns.append(c)
    todo = iter(messages)
    accepted = 0
    refused: list[str] = []

    async def worker(c: aiosmtplib.SMTP) -> None:
        nonlocal accepted
        for rcpt, data in todo:
            try:
                _, reply = await c.sendmail(t.sender, [rcpt], data)
            except aiosmtplib.SMTPResponseException as exc:
                refused.append(f"{exc.code} {exc.message}")
                continue
            accepted += reply.startswith("2")

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - start
    for c in conns:
        await c.quit()
    size = sum(len(d) for _, d in messages) / n
    return {"accepted": accepted, "wall": wall, "refused": refused[:5], "size": size}


def _client(t: Target, n: int, clients: int, out: Any) -> None:
    out.send(uvloop.run(_submit(t, n, clients)))


def drive(t: Target, n: int, clients: int) -> dict[str, Any]:
    """Submit from a child process while this process's loop serves."""
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_client, args=(t, n, clients, theirs))
    proc.start()
    result: dict[str, Any] = mine.recv()
    proc.join()
    return result


async def _in_loop(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    # the clients wait on a pipe; this loop keeps serving meanwhile
    return await asyncio.to_thread(fn)


class FileHandler:
    """The plain way: each message to a file of its own, then 250."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        with open(self.folder / f"{self.count:08d}.eml", "wb") as fh:
            fh.write(envelope.original_content or b"")
        return "250 OK"


@asynccontextmanager
async def plain_server(tmp: Path) -> AsyncIterator[tuple[Target, FileHandler]]:
    ctx = server_context(tmp, ["localhost"], ca_file=tmp / "plain-ca.pem", stem="plain")
    (tmp / "plain-out").mkdir()
    handler = FileHandler(tmp / "plain-out")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", tls_context=ctx), "127.0.0.1", 0
    )
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield Target(port, str(tmp / "plain-ca.pem"), "news@plain.example"), handler
    finally:
        server.close()
        await server.wait_closed()


async def _measure(n: int, clients: int) -> dict[str, Any]:
    r: dict[str, Any] = {"n": n, "clients": clients}
    with tempfile.TemporaryDirectory(prefix="mf-subbench-") as d:
        tmp = Path(d)
        async with plain_server(tmp) as (target, handler):
            r["plain"] = await _in_loop(lambda: drive(target, n, clients))
            r["plain"]["stored"] = handler.count
        async with mailsflux_submission(tmp / "mf", Tenant("northwind", "northwind.example"), rate=None) as s:
            target = Target(s.port, s.ca_file, "news@northwind.example", s.username, s.password)
            r["mailsflux"] = await _in_loop(lambda: drive(target, n, clients))
            r["mailsflux"]["delivered"] = await s.delivered(r["mailsflux"]["accepted"], timeout=120)
    return r


def measure(n: int, clients: int = CLIENTS) -> dict[str, Any]:
    return uvloop.run(_measure(n, clients))


def report(r: dict[str, Any]) -> None:
    print(describe())
    print(
        f"{r['n']} messages of {r['plain']['size'] / 1000:.1f} KB, {r['clients']} aiosmtplib"
        f" clients (STARTTLS, one connection each) in their own process, {os.cpu_count()} cores"
    )
    for label, key in (
        ("mailsflux submission (signed, spooled)", "mailsflux"),
        ("plain aiosmtpd, a file per message", "plain"),
    ):
        x = r[key]
        print(
            f"  {label:<40} {x['accepted'] / x['wall']:8.0f} messages/s accepted"
            f"   ({x['accepted']} in {x['wall']:.2f} s; refused: {x['refused'] or 'none'})"
        )
    m, p = r["mailsflux"], r["plain"]
    print(
        f"  mailsflux / plain: {(m['accepted'] / m['wall']) / (p['accepted'] / p['wall']):.2f}x;"
        f" delivered into the counting server afterwards: {m['delivered']} of {m['accepted']}"
    )


def check(r: dict[str, Any]) -> None:
    for key in ("mailsflux", "plain"):
        assert r[key]["accepted"] == r["n"], f"{key}: {r[key]['accepted']} of {r['n']} accepted"
    assert r["plain"]["stored"] == r["n"]
    assert r["mailsflux"]["delivered"] == r["n"]


try:
    import pytest  # noqa: F401

    def test_submission_accepts_durably(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(500, 8), rounds=1, iterations=1)
        report(result)
        check(result)
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    c = int(sys.argv[2]) if len(sys.argv) > 2 else CLIENTS
    result = measure(n, c)
    report(result)
    check(result)
