"""SMTP submission inside ``mailsflux serve``: clients send over STARTTLS + AUTH;
serve is killed with SIGKILL mid-stream and started again; every message that
got its 250 is delivered, duplicates stay within the bound (messages in open
SMTP transactions at the kill, plus submissions whose 250 the kill cut off)."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections import Counter
from pathlib import Path
from typing import Any

import aiosmtplib

from tests._cli import run_cli
from tests._mail import RecordingHandler, SMTPServer
from tests._submission import message
from tests._tls import server_context
from tests.test_serve_http_sigkill import CONNECTIONS, free_port, serve, wait_ready, write_config

TOTAL = 2_000
KILL_AFTER = 600
CLIENTS = 4


def test_submission_survives_a_kill(tmp_path: Path) -> None:
    handler = RecordingHandler()
    http, smtp_port = free_port(), free_port()
    with SMTPServer(handler) as mx:
        cfg = write_config(tmp_path, mx.url, http)
        server_context(tmp_path, ["localhost", "127.0.0.1"], ca_file=tmp_path / "ca.pem")
        cfg.write_text(
            cfg.read_text()
            + f'[submission]\nlisten = "127.0.0.1:{smtp_port}"\ncert_file = "server-cert.pem"\n'
            'key_file = "server-key.pem"\nhostname = "localhost"\n'
        )
        made = run_cli("keys", "smtp", "create", "--tenant", "acme", "--role", "send",
                       "--config", str(cfg))  # fmt: skip
        assert made.returncode == 0, made.stderr
        user = made.stdout.split("username: ")[1].split()[0]
        password = made.stdout.split("password: ")[1].split()[0]
        tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        acked: set[int] = set()
        unsure: list[int] = []
        todo = list(range(TOTAL))[::-1]

        async def client() -> None:
            c: aiosmtplib.SMTP | None = None
            while todo or unsure:
                i = unsure.pop() if unsure else todo.pop()
                try:
                    if c is None:
                        c = aiosmtplib.SMTP(
                            hostname="localhost", port=smtp_port, tls_context=tls, timeout=20
                        )
                        await c.connect()
                        await c.login(user, password)
                    to = f"r{i}@example.net"
                    body = message(f"m{i}", sender="n@acme.example", to=to)
                    await c.sendmail("n@acme.example", [to], body)
                    acked.add(i)
                except (aiosmtplib.SMTPException, OSError):
                    unsure.append(i)
                    c = None
                    await asyncio.sleep(0.1)

        first = serve(cfg)
        wait_ready(http)

        # Clients run until the kill; they keep retrying while serve is down.
        async def phase() -> None:
            tasks = [asyncio.ensure_future(client()) for _ in range(CLIENTS)]
            while len(acked) < KILL_AFTER:
                await asyncio.sleep(0.005)
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, 30)
            before = set(acked)
            await asyncio.sleep(0.5)
            cut = len(unsure)
            second = serve(cfg)
            await asyncio.to_thread(wait_ready, http)
            await asyncio.gather(*tasks)
            results.update(before=before, cut=cut, second=second)

        results: dict[str, Any] = {}
        asyncio.run(phase())
        second = results["second"]
        deadline = asyncio.run(_wait_delivered(handler, TOTAL))
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert deadline, "not every message arrived"
    assert second.returncode == 128 + signal.SIGTERM, err
    counts = Counter(r for m in handler.received for r in m.rcpt_tos)
    lost = [i for i in results["before"] if counts[f"r{i}@example.net"] == 0]
    assert lost == [], f"{len(lost)} acknowledged submissions lost"
    assert len(counts) == TOTAL
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= CONNECTIONS * 32 + CLIENTS + results["cut"], duplicates


async def _wait_delivered(handler: RecordingHandler, n: int) -> bool:
    for _ in range(1800):
        if len({r for m in handler.received for r in m.rcpt_tos}) >= n:
            await asyncio.sleep(1.0)
            return True
        await asyncio.sleep(0.1)
    return False
