"""`mailsflux send` with every record right: the check passes (SPF evaluated for
[delivery] source_ip, the relay being on loopback) and the mail goes out."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DKIM_NAME, DOMAIN, write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_send_passes_the_check(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer(zone(record)) as dns, SMTPServer(handler) as smtp:
        job = write_job(tmp_path, relay=smtp.url, dns_port=dns.port, key=key)
        proc = run_cli("send", str(job), "--no-spool", "--workers", "2")
        # Checked once, by the parent, not by each worker.
        assert dns.count(DKIM_NAME, "TXT") == 1
        assert dns.count(f"_dmarc.{DOMAIN}", "TXT") == 1
    assert proc.returncode == 0, proc.stderr
    assert len(handler.received) == 3
    assert "authentication" not in proc.stderr
