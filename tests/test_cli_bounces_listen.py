"""`mailsflux bounces listen` says where it listens, takes a report for its
feedback address, refuses others at RCPT, and stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from tests._bounces import DIR


def test_listen_receives_refuses_and_stops(tmp_path: Path) -> None:
    events = tmp_path / "ev.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mailsflux", "bounces", "listen", "--port", "0",
            "--feedback-address", "fbl@sender.example", "--events", str(events),
            "--quarantine", str(tmp_path / "q"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        assert m, (line, proc.poll(), proc.stderr.read() if proc.stderr else "")
        arf = (DIR / "arf-abuse.eml").read_bytes().replace(b"\n", b"\r\n")
        with smtplib.SMTP("127.0.0.1", int(m.group(1)), timeout=30) as s:
            s.ehlo("mx.example.com")
            s.mail("<>")
            assert s.rcpt("victim@elsewhere.example")[0] == 550
            assert s.rcpt("fbl@sender.example")[0] == 250
            assert s.data(arf)[0] == 250
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "1 reports: 0 bounces, 1 complaints" in out
    assert '"type":"complained"' in events.read_text()


def test_listen_without_addresses_is_a_usage_error(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mailsflux", "bounces", "listen", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (
        "mailsflux: error: give --bounce-domain (with --tracking) or --feedback-address"
    )
