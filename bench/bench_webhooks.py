"""Question: how many events a second does one webhook endpoint deliver, and
at what CPU cost per event in the server?

A tenant log is filled with EVENTS delivered events (sealed recipients, as
the gateway writes them); one :class:`~mailsflux.webhooks.Dispatcher` then
POSTs them all to a receiver in another process (uvicorn answering 204
without reading the JSON, so the receiver's cost is not counted), in
batches of 100 and of 1,000. The plain way, measured in the same run: the
same rows read from SQLite without unsealing, ``json.dumps``'d and POSTed
with ``http.client`` over one kept-alive connection, unsigned. CPU is this
process's (RUSAGE_SELF): reading, unsealing, encoding, signing, HTTP.

    .venv/bin/python bench/bench_webhooks.py [EVENTS]

Timings are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from mailsflux.events import EventDetails
from mailsflux.gateway import TenantLog
from mailsflux.spool import SpoolKeys
from mailsflux.tenants import WebhookSpec
from mailsflux.webhooks import Dispatcher

RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off")
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(path: Path, n: int) -> TenantLog:
    log = TenantLog(path, SpoolKeys.generate(), "acme")
    details = EventDetails(code=250, enhanced_status="2.0.0", reply="2.0.0 Ok: queued as 4QxT")
    for i in range(n):
        log.add("delivered", f"{i:020x}.1@acme.example", f"r{i}@example.net", "job_1", details)
        if i % 10_000 == 9_999:
            log.flush()
    log.flush()
    return log


async def dispatch(log: TenantLog, url: str, batch: int, n: int, name: str) -> tuple[float, float]:
    spec = WebhookSpec(url=url, secret="bench-secret-0123456789", batch_size=batch, name=name)
    log.webhook_cursor(name)  # a new endpoint starts after the newest event:
    log.set_webhook_cursor(name, 0)  # this one is to get them all
    d = Dispatcher("acme", spec, log)
    cpu, wall = _cpu(), time.perf_counter()
    task = asyncio.ensure_future(d.run())
    while d.delivered < n:
        await asyncio.sleep(0.005)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return wall, cpu


def plain(path: Path, port: int, batch: int) -> tuple[float, float]:
    db = sqlite3.connect(path)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    cpu, wall = _cpu(), time.perf_counter()
    after = 0
    while True:
        rows = db.execute(
            "SELECT id, type, time, message_id, job FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, batch),
        ).fetchall()
        if not rows:
            break
        keys = ("id", "type", "time", "message_id", "job")
        events = [dict(zip(keys, (f"evt_{r[0]}", *r[1:]), strict=True)) for r in rows]
        body = json.dumps({"events": events}).encode()
        conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        after = rows[-1][0]
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    conn.close()
    db.close()
    return wall, cpu


def main(n: int) -> None:
    port = _port()
    rx = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "log.db"
            log = fill(path, n)
            print(describe())
            print(f"{n} events, receiver in another process (uvicorn, 204)")
            for batch in (100, 1000):
                wall, cpu = asyncio.run(
                    dispatch(log, f"http://127.0.0.1:{port}/", batch, n, f"b{batch}")
                )
                pw, pc = plain(path, port, batch)
                print(
                    f"batch {batch:5}: webhook {n / wall:9.0f} events/s, "
                    f"{cpu / n * 1e6:6.1f} us CPU/event | plain {n / pw:9.0f} events/s, "
                    f"{pc / n * 1e6:6.1f} us CPU/event"
                )
            log.close()
    finally:
        rx.terminate()
        rx.wait(10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
