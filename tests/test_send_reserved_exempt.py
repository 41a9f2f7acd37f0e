"""A job from a reserved domain (RFC 2606: sender.example) is exempt: one notice
line, no DNS query at all, and the mail is sent under the default "enforce"."""

from __future__ import annotations

from pathlib import Path

from tests._auth import write_job, write_key
from tests._cli import run_cli
from tests._dns import REFUSED, DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_reserved_from_domain_is_not_checked(tmp_path: Path) -> None:
    key, _ = write_key(tmp_path)
    handler = RecordingHandler()
    # A DNS server that refuses everything: any lookup would stop the job.
    with DNSServer({"sender.example": REFUSED}) as dns, SMTPServer(handler) as smtp:
        job = write_job(
            tmp_path,
            relay=smtp.url,
            dns_port=dns.port,
            key=key,
            sender="News <news@sender.example>",
            dkim_domain="sender.example",
        )
        proc = run_cli("send", str(job), "--no-spool")
        assert dns.count() == 0
    assert proc.returncode == 0, proc.stderr
    assert len(handler.received) == 3
    notes = [ln for ln in proc.stderr.splitlines() if "reserved domain" in ln]
    assert notes == [
        f"{job}: notice: sender.example is a reserved domain (RFC 2606/6761) that cannot"
        " publish SPF, DKIM or DMARC records: outbound authentication not checked"
    ]
