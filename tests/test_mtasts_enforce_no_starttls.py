"""MTA-STS enforce, and the MX host offers no STARTTLS: the message defers
(never sent in plain text), the server never sees a MAIL command, and the
failure is counted as starttls-not-supported."""

from __future__ import annotations

from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, PolicyServer, mx_job, policy


def test_enforce_without_starttls_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    body = policy("enforce", "mx.example.com")
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
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    assert handler.received == []
    counts = summary.tls["example.com"]
    assert counts.policy == "sts"
    assert counts.success == 0
    assert counts.failures["starttls-not-supported"] >= 1
