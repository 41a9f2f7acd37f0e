"""MTA-STS enforce whose mx patterns do not name the domain's MX host: the
message defers even though the host has good TLS, nothing is sent to it, and
the failure is counted (validation-failure)."""

from __future__ import annotations

from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, PolicyServer, mx_job, policy
from tests._tls import TLSServer


def test_enforce_mx_not_in_policy_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    # "*.example.com" covers one label only (RFC 8461 4.1): not a.mx.example.com.
    body = policy("enforce", "*.example.com", "mail.example.net")
    with (
        TLSServer(handler, ca.server_context(["a.mx.example.com"])) as smtp,
        PolicyServer(ca.server_context(["mta-sts.example.com"]), body) as web,
    ):
        zone = {
            "example.com": {"MX": ["10 a.mx.example.com."]},
            "a.mx.example.com": {"A": ["127.0.0.1"]},
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
    counts = summary.tls["example.com"]
    assert counts.policy == "sts"
    assert counts.failures == {"validation-failure": counts.failure}
    assert counts.failure >= 1
