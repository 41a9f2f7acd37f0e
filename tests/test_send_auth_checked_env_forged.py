"""A worker started by hand with ``MAILSFLUX_AUTH_CHECKED=1`` (not the
parent's proof) checks the job itself: a failing job is refused, nothing sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests._auth import DKIM_NAME, write_job, write_key, zone
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_a_hand_set_checked_flag_does_not_skip_the_check(tmp_path: Path) -> None:
    key, _ = write_key(tmp_path)
    _, other = write_key(tmp_path, "old.pem")
    handler = RecordingHandler()
    with DNSServer(zone(other)) as dns, SMTPServer(handler) as smtp:
        job = write_job(tmp_path, relay=smtp.url, dns_port=dns.port, key=key)
        proc = subprocess.run(
            [sys.executable, "-m", "mailsflux", "send", str(job), "--shard", "0/1", "-q"],
            env={**os.environ, "MAILSFLUX_AUTH_CHECKED": "1"},
            input="",
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert dns.count(DKIM_NAME, "TXT") >= 1
    assert proc.returncode != 0
    assert handler.received == []
    assert "fails outbound authentication" in proc.stderr
