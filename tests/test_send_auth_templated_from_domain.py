"""Under "enforce", a From whose domain is a merge tag (each row its own
domain, none of them checked) is refused in one line; nothing is sent."""

from __future__ import annotations

from pathlib import Path

from tests._auth import write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_templated_from_domain_is_refused(tmp_path: Path) -> None:
    key, dkim = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer(zone(dkim)) as dns, SMTPServer(handler) as smtp:
        job = write_job(
            tmp_path, relay=smtp.url, dns_port=dns.port, key=key, sender="News <news@{{dom}}>"
        )
        (job.parent / "recipients.csv").write_text(
            "email,name,dom\nuser1@example.org,U1,unverified-bank.com\n", encoding="utf-8"
        )
        proc = run_cli("send", str(job), "--no-spool")
    assert proc.returncode != 0
    assert handler.received == []
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1, proc.stderr
    assert "takes its domain from a merge tag" in errors[0]
    assert "Traceback" not in proc.stderr
