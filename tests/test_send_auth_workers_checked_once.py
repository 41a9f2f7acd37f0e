"""`send --workers 2` checks the job's records once, in the parent; its
workers take the parent's proof and ask DNS nothing, and every row is sent."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DKIM_NAME, write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_workers_rely_on_the_parents_check(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer(zone(record)) as dns, SMTPServer(handler) as smtp:
        job = write_job(tmp_path, relay=smtp.url, dns_port=dns.port, key=key, rows=4)
        proc = run_cli("send", str(job), "--no-spool", "--workers", "2")
        asked = dns.count(DKIM_NAME, "TXT")
    assert proc.returncode == 0, proc.stderr
    assert len(handler.received) == 4
    assert asked == 1
