"""``serve`` with ``[bounces]``: the bounce domain's listener runs inside it. A DSN
to a job's VERP return path, sent over SMTP, suppresses the recipient; other
addresses are refused at RCPT."""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from tests._bounces import write_tracking_config
from tests._cli import run_cli
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer
from tests.test_serve_http_sigkill import free_port
from tests.test_verp_send import BOUNCE, _dsn


def test_a_dsn_to_serves_listener_suppresses(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, [["alice@example.com", "A", "Alice", "Pro"]], relay=server.url)
        cfg = write_tracking_config(job.parent / "tracking.toml")
        job.write_text(
            job.read_text()
            + f'\n[tracking]\nconfig = "tracking.toml"\nbounce_domain = "{BOUNCE}"\n'
        )
        assert run_cli("send", str(job), "-q").returncode == 0
    (alice,) = handler.received

    port = free_port()
    key = tmp_path / "dkim.pem"
    conf = tmp_path / "server.toml"
    conf.write_text(
        f'data_dir = "data"\n[[dkim]]\ndomain = "sender.example"\nselector = "s"\n'
        f'key = "{key}"\ngenerate = true\nalgorithm = "ed25519-sha256"\n'
        f'[bounces]\nlisten = "127.0.0.1:{port}"\ntracking = "{cfg}"\n'
        f'bounce_domain = "{BOUNCE}"\nevents = "ev.jsonl"\nquarantine = "q"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsflux", "serve", "--config", str(conf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                s = smtplib.SMTP("127.0.0.1", port, timeout=30)
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with s:
            s.ehlo("mx.example.com")
            s.mail("<>")
            assert s.rcpt("someone@elsewhere.example")[0] == 550  # never a relay
            assert s.rcpt(alice.mail_from)[0] == 250
            got = s.data(_dsn(alice).replace(b"\n", b"\r\n"))
            assert got[0] == 250, got
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert re.search(r"bounces on smtp://127\.0\.0\.1:\d+", err), err
    r = run_cli("suppression", "check", "alice@example.com", "--tracking", str(cfg))
    assert r.returncode == 1 and "hard-bounce" in r.stdout
    assert '"type":"bounced"' in (tmp_path / "ev.jsonl").read_text()
