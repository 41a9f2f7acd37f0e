"""Question: how many messages per second does SMTP submission accept durably?

C concurrent aiosmtplib clients (one connection each: TLS, AUTH, then
``sendmail()`` in a loop) in P processes of their own submit N ~3 KB
messages, one recipient each, to a server in this process (uvloop). Timed
from the first MAIL to the last 250: a 250 from Mailsflux means the gateway
DKIM-signed the message (RSA-2048; once more with Ed25519) and stored it
in the spool; delivery
takes it from there (into a counting aiosmtpd sink, a process of its own,
while the clients go on) and the run checks that every message arrived.
Once over STARTTLS (port 587 style), once over implicit TLS (465).

Against it, in the same run, the plain way: a minimal aiosmtpd handler (the
same TLS, no AUTH) that writes each message to a file of its own before it
answers 250 (no fsync; the spool does not fsync each commit either).

Server CPU is this process's CPU time while the clients ran, per message.
Issue 13's target: at least 1,500 messages/s on this 2-core machine.

    .venv/bin/python bench/bench_submission.py [N] [C] [P]
    .venv/bin/python -m pytest bench/bench_submission.py --benchmark-enable
"""

from __future__ import annotations

import asyncio
import multiprocessing
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
import msgspec
import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from tests._submission import submission
from tests._tls import server_context

from _machine import describe
from mailsflux.benchmark.sinks import builtin_sink
from mailsflux.events import position
from mailsflux.gateway import Gateway
from mailsflux.jobs.jobfile import DKIMSpec
from mailsflux.tenants import Principal, Tenant, Tenants

N = 10_000
CLIENTS = 16
#: Client processes (aiosmtplib costs more CPU per message than either server).
PROCS = 2


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
    #: TLS from the first byte (port 465 style) instead of STARTTLS.
    implicit: bool = False


async def _submit(t: Target, first: int, n: int, clients: int, pipe: Any) -> dict[str, Any]:
    """One client process: connect and log in, say ready, wait for go, send."""
    ctx = ssl.create_default_context(cafile=t.ca_file)
    messages = [message(t.sender, i) for i in range(first, first + n)]
    conns = []
    for _ in range(clients):
        c = aiosmtplib.SMTP(
            hostname="localhost",
            port=t.port,
            tls_context=ctx,
            use_tls=t.implicit,
            start_tls=not t.implicit,
            timeout=60,
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
                await c.sendmail(t.sender, [rcpt], data)  # raises unless 250
            except aiosmtplib.SMTPResponseException as exc:
                refused.append(f"{exc.code} {exc.message}")
                continue
            accepted += 1

    pipe.send("ready")
    await asyncio.to_thread(pipe.recv)
    start, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker(c) for c in conns))
    end, cpu = time.monotonic(), time.process_time() - cpu
    for c in conns:
        await c.quit()
    size = sum(len(d) for _, d in messages) / max(n, 1)
    return {
        "accepted": accepted,
        "start": start,
        "end": end,
        "cpu": cpu,
        "refused": refused,
        "size": size,
    }


def _client(t: Target, first: int, n: int, clients: int, pipe: Any) -> None:
    pipe.send(uvloop.run(_submit(t, first, n, clients, pipe)))


def drive(t: Target, n: int, clients: int, procs: int) -> dict[str, Any]:
    """Submit from ``procs`` child processes (``clients`` connections in all)
    while this process's loop serves; timed from the first child's start to
    the last one's end. ``server_cpu``: this process's CPU meanwhile."""
    ctx = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for k in range(procs):
        mine, theirs = ctx.Pipe()
        share = n // procs + (k < n % procs)
        first = k * (n // procs) + min(k, n % procs)
        conns = clients // procs + (k < clients % procs)
        child = ctx.Process(target=_client, args=(t, first, share, conns, theirs))
        child.start()
        pipes.append(mine)
        children.append(child)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    cpu = time.process_time()
    for pipe in pipes:
        pipe.send("go")
    parts = [pipe.recv() for pipe in pipes]
    server_cpu = time.process_time() - cpu
    for child in children:
        child.join()
    return {
        "accepted": sum(p["accepted"] for p in parts),
        "wall": max(p["end"] for p in parts) - min(p["start"] for p in parts),
        "client_cpu": sum(p["cpu"] for p in parts),
        "server_cpu": server_cpu,
        "refused": [r for p in parts for r in p["refused"]][:5],
        "size": sum(p["size"] for p in parts) / procs,
    }


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
async def plain_server(tmp: Path) -> AsyncIterator[tuple[dict[str, Target], FileHandler]]:
    """The plain way, offering STARTTLS on one port and implicit TLS on another."""
    ctx = server_context(tmp, ["localhost"], ca_file=tmp / "plain-ca.pem", stem="plain")
    (tmp / "plain-out").mkdir()
    handler = FileHandler(tmp / "plain-out")
    loop = asyncio.get_running_loop()
    starttls = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", tls_context=ctx), "127.0.0.1", 0
    )
    implicit = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost"), "127.0.0.1", 0, ssl=ctx
    )
    ca, sender = str(tmp / "plain-ca.pem"), "news@plain.example"
    targets = {
        "starttls": Target(_port(starttls), ca, sender),
        "implicit": Target(_port(implicit), ca, sender, implicit=True),
    }
    try:
        yield targets, handler
    finally:
        for server in (starttls, implicit):
            server.close()
            await server.wait_closed()


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def northwind(tmp: Path, algorithm: str = "rsa-sha256") -> Tenants:
    """One tenant signing with RSA-2048 (as most senders do) or Ed25519."""
    key = msgspec.convert(
        {
            "domain": "northwind.example",
            "selector": "s1",
            "key": str(tmp / "nw.pem"),
            "generate": True,
            "algorithm": algorithm,
        },
        DKIMSpec,
    )
    return Tenants([Tenant(name="northwind", domains=["northwind.example"], dkim=[key])])


async def delivered(gw: Gateway, want: int, timeout: float) -> int:
    """How many messages the gateway has delivered, once ``want`` are (or time is up)."""
    reader = Principal(tenant="northwind", key_id="bench", roles=frozenset({"read"}))
    count = cursor = 0
    deadline = time.monotonic() + timeout
    while count < want and time.monotonic() < deadline:
        events = gw.events(reader, cursor, 5000)
        if not events:
            await asyncio.sleep(0.1)
            continue
        # The log's cursor is the event's position; its id ("evt_17") compared
        # as text with the integer ids matches nothing, so counting stopped at
        # the first page read and waited out the timeout whenever deliveries
        # were still going on at that read.
        cursor = position(events[-1].id)
        count += sum(e.type == "delivered" for e in events)
    return count


async def _measure(n: int, clients: int, procs: int, tmp: Path, relay: str) -> dict[str, Any]:
    r: dict[str, Any] = {"n": n, "clients": clients, "procs": procs}
    async with plain_server(tmp) as (targets, handler):
        for mode, target in targets.items():
            r[f"plain {mode}"] = await _in_loop(lambda t=target: drive(t, n, clients, procs))
        r["plain stored"] = handler.count
    for algorithm, modes in (
        ("rsa-sha256", ("starttls", "implicit")),
        ("ed25519-sha256", ("implicit",)),
    ):
        folder = tmp / algorithm
        folder.mkdir()
        tenants = northwind(folder, algorithm)
        async with submission(folder, relay, tenants=tenants, rate=None) as s:
            login = ("news@northwind.example", s.username, s.password)
            for i, mode in enumerate(modes):
                port = s.port if mode == "starttls" else s.implicit_port
                target = Target(port, s.ca_file, *login, implicit=mode == "implicit")
                cpu = time.process_time()
                x = await _in_loop(lambda t=target: drive(t, n, clients, procs))
                # all accepted so far are delivered before the next run starts
                x["delivered"] = await delivered(s.gateway, n * (i + 1), 300) - n * i
                x["total_cpu"] = time.process_time() - cpu
                suffix = "" if algorithm == "rsa-sha256" else " ed25519"
                r[f"mailsflux {mode}{suffix}"] = x
    return r


def measure(n: int, clients: int = CLIENTS, procs: int = PROCS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mf-subbench-") as d, builtin_sink() as sink:
        relay = f"smtp+plain://127.0.0.1:{sink.port}"
        return uvloop.run(_measure(n, clients, procs, Path(d), relay))


def report(r: dict[str, Any]) -> None:
    n = r["n"]
    print(describe())
    print(
        f"{n} messages of {r['plain starttls']['size'] / 1000:.1f} KB, one recipient each;"
        f" {r['clients']} aiosmtplib clients (one connection each) in {r['procs']}"
        " processes of their own; the server in this one, uvloop"
    )
    rows = (
        ("mailsflux, STARTTLS (signed, spooled)", "mailsflux starttls"),
        ("mailsflux, implicit TLS", "mailsflux implicit"),
        ("mailsflux, implicit TLS, Ed25519", "mailsflux implicit ed25519"),
        ("plain aiosmtpd, STARTTLS, file each", "plain starttls"),
        ("plain aiosmtpd, implicit TLS", "plain implicit"),
    )
    for label, key in rows:
        x = r[key]
        print(
            f"  {label:<38} {x['accepted'] / x['wall']:6.0f} messages/s"
            f"   server CPU {x['server_cpu'] / n * 1e6:5.0f} us/message"
            f" (clients {x['client_cpu'] / n * 1e6:3.0f})"
            f"   {x['accepted']} in {x['wall']:.2f} s, refused: {x['refused'] or 'none'}"
        )
    for mode in ("starttls", "implicit", "implicit ed25519"):
        m, p = r[f"mailsflux {mode}"], r[f"plain {mode.split()[0]}"]
        ratio = (m["accepted"] / m["wall"]) / (p["accepted"] / p["wall"])
        print(
            f"  {mode}: mailsflux / plain {ratio:.2f}x;"
            f" delivered into a counting aiosmtpd sink (own process) {m['delivered']},"
            f" server CPU with delivery {m['total_cpu'] / n * 1e6:.0f} us/message"
        )


def check(r: dict[str, Any]) -> None:
    runs = [k for k in r if k.startswith(("mailsflux ", "plain ")) and k != "plain stored"]
    assert len(runs) == 5, runs
    for key in runs:
        assert r[key]["accepted"] == r["n"], f"{key}: {r[key]['accepted']} of {r['n']} accepted"
        if key.startswith("mailsflux"):
            assert r[key]["delivered"] == r["n"], f"{key}: {r[key]['delivered']} delivered"
    assert r["plain stored"] == 2 * r["n"]


try:
    import pytest  # noqa: F401

    def test_submission_accepts_durably(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(500, 8, 1), rounds=1, iterations=1)
        report(result)
        check(result)
except ImportError:
    pass


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    c = int(sys.argv[2]) if len(sys.argv) > 2 else CLIENTS
    p = int(sys.argv[3]) if len(sys.argv) > 3 else PROCS
    result = measure(n, c, p)
    report(result)
    check(result)
