"""MTA-STS testing mode, and the MX host offers no STARTTLS: delivered as
usual (testing never blocks mail, RFC 8461 5), the failure counted under
policy "sts-testing"."""

from __future__ import annotations

from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, PolicyServer, mx_job, policy


def test_testing_mode_delivers_and_counts(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    body = policy("testing", "mx.example.com")
    with (
        SMTPServer(handler) as smtp,
        PolicyServer(ca.server_context(["mta-sts.example.com"]), body) as web,
    ):
        zone = {
            "example.com": {"MX": ["10 mx.example.com."]},
            "mx.example.com": {"A": ["127.0.0.1"]},
            "_mta-sts.example.com": {"TXT": ['"v=STSv1; id=1"']},
            "mta-sts.example.com": {"A": [web.address]},
        }
        with DNSServer(zone) as dns:
            job = mx_job(
                tmp_path,
                [["a@example.com", "A", "A", "Team"]],
                smtp_port=smtp.port,
                dns_port=dns.port,
                ca=ca,
            )
            summary, _ = send_job(job)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert counts.policy == "sts-testing"
    assert counts.failures == {"starttls-not-supported": 1}
