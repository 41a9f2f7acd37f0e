"""A TLSA record the resolver did not validate (no AD bit, though the MX
answer has it) is ignored: the
mismatching record below would defer the mail if it were trusted; instead
the message is delivered as usual (here in plain text, the server offering
no STARTTLS) and no policy is counted for the domain."""

from __future__ import annotations

from pathlib import Path

from tests._dns import AD, DNSServer
from tests._jobs import send_job
from tests._mail import SMTPServer
from tests._policy import MailRecorder, mx_job


def test_tlsa_without_ad_is_ignored(tmp_path: Path) -> None:
    handler = MailRecorder()
    with SMTPServer(handler) as smtp:
        zone = {
            "example.com": {AD: True, "MX": ["10 mx.example.com."]},
            "mx.example.com": {"A": ["127.0.0.1"]},
            f"_{smtp.port}._tcp.mx.example.com": {"TLSA": ["3 1 1 " + "ab" * 32]},
        }
        with DNSServer(zone) as dns:
            job = mx_job(
                tmp_path,
                [["a@example.com", "A", "A", "Team"]],
                smtp_port=smtp.port,
                dns_port=dns.port,
                ca=None,
            )
            summary, _ = send_job(job)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    assert summary.tls == {}
