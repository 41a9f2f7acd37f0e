"""10,000 messages POSTed by concurrent clients to ``mailsflux serve``, which is
killed with SIGKILL mid-stream and started again: every acknowledged message
is delivered; duplicates stay within the bound (messages in open SMTP
transactions at the kill, plus requests whose answer the kill cut off)."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests._cli import run_cli
from tests._mail import RecordingHandler, SMTPServer

TOTAL = 10_000
KILL_AFTER = 3_000
CLIENTS = 8
CONNECTIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, relay: str, port: int) -> Path:
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        f"""
data_dir = "data"
[http]
listen = "127.0.0.1:{port}"
access_log = false
[delivery]
relay = "{relay}"
ehlo_name = "mta.test"
connections = {CONNECTIONS}
retry_initial = 0.05
[[tenants]]
name = "acme"
domains = ["acme.example"]
[[tenants.dkim]]
domain = "acme.example"
selector = "s1"
key = "dkim/acme.pem"
algorithm = "ed25519-sha256"
generate = true
"""
    )
    return cfg


class Clients:
    """CLIENTS threads POSTing message i to r{i}@example.net, key k{i}."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.key = ""
        self.next = 0
        self.acked: set[int] = set()
        self.unsure: list[int] = []  # sent, no answer: retried with the same key
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def take(self) -> int | None:
        with self.lock:
            if self.unsure:
                return self.unsure.pop()
            if self.next >= TOTAL:
                return None
            self.next += 1
            return self.next - 1

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            i = self.take()
            if i is None:
                return
            body = json.dumps(
                {"sender": "n@acme.example", "to": f"r{i}@example.net", "subject": f"m{i}",
                 "text": "hello"}
            ).encode()  # fmt: skip
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/v1/messages", body=body, headers={
                    "Authorization": f"Bearer {self.key}", "Idempotency-Key": f"k{i}",
                    "Content-Type": "application/json"})  # fmt: skip
                r = conn.getresponse()
                r.read()
                ok = r.status == 202
            except (OSError, http.client.HTTPException):
                ok = False
                conn = None
                time.sleep(0.05)
            with self.lock:
                if ok:
                    self.acked.add(i)
                else:
                    self.unsure.append(i)


def serve(cfg: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "mailsflux", "serve", "--config", str(cfg), "--interval", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("serve did not get ready")


def test_sigkill_mid_stream_loses_no_acknowledged_message(tmp_path: Path) -> None:
    handler = RecordingHandler()
    port = free_port()
    with SMTPServer(handler) as smtp:
        cfg = write_config(tmp_path, smtp.url, port)
        made = run_cli("keys", "api", "create", "--tenant", "acme", "--role", "send",
                       "--config", str(cfg))  # fmt: skip
        assert made.returncode == 0, made.stderr
        clients = Clients(port)
        clients.key = made.stdout.strip()

        first = serve(cfg)
        wait_ready(port)
        threads = [threading.Thread(target=clients.run) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        while len(clients.acked) < KILL_AFTER:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        time.sleep(0.5)  # the clients see the kill
        acked_before = set(clients.acked)
        cut_off = len(clients.unsure)

        second = serve(cfg)
        wait_ready(port)
        for t in threads:
            t.join(240)
        assert len(clients.acked) == TOTAL

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            got = {r for m in handler.received for r in m.rcpt_tos}
            if len(got) >= TOTAL:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # anything more that would go out, goes out now
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)

    assert second.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    counts = Counter(r for m in handler.received for r in m.rcpt_tos)
    missing = [i for i in acked_before if counts[f"r{i}@example.net"] == 0]
    assert missing == [], f"{len(missing)} acknowledged messages lost"
    assert len(counts) == TOTAL
    duplicates = sum(n - 1 for n in counts.values())
    bound = CONNECTIONS * 32 + cut_off
    print(f"acked before kill {len(acked_before)}, cut off {cut_off}, duplicates {duplicates}")
    assert duplicates <= bound, (duplicates, bound)
