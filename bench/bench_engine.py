"""Question: what does sending one message at a time through ``Engine.send``
cost against sending the same messages as one batch job?

The same N personalised messages (subject, text and HTML templates, Ed25519
DKIM, so the signature does not hide the engine's own cost) go into Postfix's
``smtp-sink`` on loopback, under uvloop, through one Engine each way:

* batch: ``await (await engine.submit(Batch(template, rows))).wait()``;
* send: 100 concurrent tasks, each calling ``await engine.send(message)``
  for the next row until none is left (what a web app's handlers do).

Reports messages per second, client CPU per message (``time.process_time()``;
the sink runs in its own process) and the ratio send / batch (the target:
at least 0.6). Every message must be delivered, else the run fails.

    .venv/bin/python bench/bench_engine.py [N]
    .venv/bin/python -m pytest bench/bench_engine.py --benchmark-enable

Needs ``smtp-sink`` (Debian package postfix; scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop
from msgspec.structs import replace

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe
from _private import private_state
from bench_pipeline_sink import smtp_sink, smtp_sink_path
from mailsflux import Batch, Config, Delivery, DKIMKey, Engine, Message

N = 20_000
TASKS = 100
CONNECTIONS = 4

TEMPLATE = Message(
    sender="Northwind <news@northwind.example>",
    to="",
    subject="Willkommen bei Northwind, {{first_name}}",
    text="Hallo {{first_name}},\n\nIhr Konto für {{company}} ist bereit.\n" * 8,
    html="<p>Hallo <b>{{first_name}}</b>, Ihr Konto f&uuml;r {{company}} ist bereit.</p>\n" * 8,
)


def rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "email": f"user{i}@example{i % 7}.org",
            "name": f"User {i}",
            "first_name": f"U{i}",
            "company": f"Firma {i % 13}",
        }
        for i in range(n)
    ]


def config(port: int, keys: Path) -> Config:
    return Config(
        dkim=[
            DKIMKey(
                domain="northwind.example",
                selector="mf",
                key=str(keys / "mf.pem"),
                algorithm="ed25519-sha256",
                generate=True,
            )
        ],
        delivery=Delivery(
            relay=f"smtp+plain://127.0.0.1:{port}",
            connections=CONNECTIONS,
            ehlo_name="bench.northwind.example",
        ),
    )


async def run_batch(cfg: Config, data: list[dict[str, str]]) -> int:
    async with Engine(cfg) as engine:
        handle = await engine.submit(Batch(template=TEMPLATE, recipients=data))
        return (await handle.wait()).sent


async def run_send(cfg: Config, data: list[dict[str, str]]) -> int:
    todo: Iterator[dict[str, str]] = iter(data)
    delivered = 0

    async def task(engine: Engine) -> None:
        nonlocal delivered
        for row in todo:
            msg = replace(TEMPLATE, to=f"{row['name']} <{row['email']}>", data=row)
            if (await engine.send(msg)).status == "delivered":
                delivered += 1

    async with Engine(cfg) as engine:
        await asyncio.gather(*(task(engine) for _ in range(TASKS)))
    return delivered


def measure(n: int) -> dict[str, Any]:
    data = rows(n)
    out: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory(prefix="mf-bench-engine-") as tmp, smtp_sink() as port:
        cfg = config(port, Path(tmp))
        # Warm up: the key is generated, modules imported, the sink's first
        # connections made, before anything is timed.
        uvloop.run(run_batch(cfg, data[: min(200, n)]))
        for name, fn in (("batch", run_batch), ("send", run_send)):
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()
            sent = uvloop.run(fn(cfg, data))
            out[name] = {
                "sent": sent,
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
    return out


def report(r: dict[str, Any]) -> None:
    n = r["n"]
    print(describe())
    print(f"  {n} messages (text + HTML, Ed25519 DKIM) into smtp-sink, {CONNECTIONS} connections")
    for label, key in (("one batch job (submit)", "batch"), (f"{TASKS} tasks x send()", "send")):
        x = r[key]
        print(
            f"  {label:<24} {x['sent'] / x['wall']:8.0f} messages/s"
            f"   {x['cpu'] / n * 1e6:6.1f} us CPU/message   ({x['sent']} in {x['wall']:.2f} s)"
        )
    b, s = r["batch"], r["send"]
    print(
        f"  ratio send / batch: {(s['sent'] / s['wall']) / (b['sent'] / b['wall']):.2f}x messages/s"
    )


def check(r: dict[str, Any]) -> None:
    for key in ("batch", "send"):
        assert r[key]["sent"] == r["n"], f"{key}: {r[key]['sent']} of {r['n']} delivered"


try:
    import pytest

    @pytest.mark.skipif(smtp_sink_path() is None, reason="smtp-sink not installed")
    def test_engine_send_against_batch(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(1000,), rounds=1, iterations=1)
        report(result)
        check(result)
except ImportError:
    pass


if __name__ == "__main__":
    with private_state():
        result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else N)
    report(result)
    check(result)
