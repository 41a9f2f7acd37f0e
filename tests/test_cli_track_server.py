"""`mailsflux track-server` says where it listens; SIGTERM or SIGINT is a clean stop (exit 0)."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailsflux.tracking import write_new_config


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_announces_its_address_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = tmp_path / "tracking.toml"
    write_new_config(cfg, "https://t.example.com")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailsflux", "track-server", "--config", str(cfg), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # blocks until the server is up (or gone)
        m = re.fullmatch(r"mailsflux track-server: listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert m, (line, proc.poll())
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request("GET", "/o/forged.gif")
        assert conn.getresponse().status == 404  # it answers where it said
        conn.close()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
