"""Question: how much client CPU does the engine spend per message outside signing?

Sends N precomposed ~2 KB messages (one recipient each) through the real
:class:`Scheduler` (smarthost route, its sessions pipelined) into Postfix's
``smtp-sink`` on loopback, under uvloop, and prints the client's CPU time
per message (``time.process_time()`` around submit + close; the sink is
another process). Every message must be answered 250.

    .venv/bin/python bench/bench_smtp_session_cpu.py [N] [rounds] [connections]

To compare two builds, run it under each (``PYTHONPATH=/tmp/base``), A B A B.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

import uvloop

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import Scheduler, SiteLimits
from mailsflux.types import DeliveryResult, RenderedMessage


def _messages(n: int) -> list[RenderedMessage]:
    body = b"".join(
        b"Line %d of the message body, quoted-printable-ish text.\r\n" % i for i in range(30)
    )
    out = []
    for i in range(n):
        rcpt = f"user{i}@example{i % 7}.org"
        data = (
            b"From: News <news@northwind.example>\r\nTo: <%s>\r\nSubject: Hello %d\r\n"
            b"Message-ID: <%d@northwind.example>\r\n\r\n" % (rcpt.encode(), i, i)
        ) + body
        out.append(
            RenderedMessage("news@northwind.example", rcpt, data, f"<{i}@northwind.example>", i)
        )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _run(port: int, messages: list[RenderedMessage], connections: int) -> float:
    delivered = 0

    def on_result(r: DeliveryResult) -> None:
        nonlocal delivered
        if r.status != "delivered":
            raise SystemExit(f"not delivered: {r}")
        delivered += 1

    scheduler = Scheduler(
        MXResolver(smarthost=("127.0.0.1", port)),
        on_result,
        default_limits=SiteLimits(connections=connections, tls="none"),
    )
    submit = scheduler.submit
    gc.collect()
    t0 = time.process_time()
    for m in messages:
        await submit(m)
    await scheduler.close()
    cpu = time.process_time() - t0
    if delivered != len(messages):
        raise SystemExit(f"only {delivered} of {len(messages)} delivered")
    return cpu


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    exe = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = _free_port()
    sink = subprocess.Popen(
        [exe, "-u", "nobody", "-c", f"127.0.0.1:{port}", "1000"], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        messages = _messages(n)
        us = []
        for _ in range(rounds):
            us.append(uvloop.run(_run(port, messages, connections)) / n * 1e6)
        import mailsflux.delivery.smtp as smtp

        print(
            f"{os.path.dirname(smtp.__file__)}: {n} messages, {connections} connection(s): "
            f"CPU us/message median {statistics.median(us):.2f} "
            f"(runs {', '.join(f'{u:.2f}' for u in us)})"
        )
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()
