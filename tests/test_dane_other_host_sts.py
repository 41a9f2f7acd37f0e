"""DANE on one MX host does not switch MTA-STS off for the others (RFC 8461
2 gives DANE precedence host by host): mx1 has a validated TLSA record but
its port is closed (an attacker dropping it, say); mx2 has no TLSA record
and the domain's MTA-STS policy (enforce) names only mx1. mx2 must not get
the mail in plain text: the message defers, no MAIL is sent, and the policy
host was asked."""

from __future__ import annotations

from pathlib import Path

from tests._dns import AD, DNSServer
from tests._jobs import send_job
from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, mx_job, policy


def test_host_without_tlsa_meets_the_sts_policy(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    plain = MailRecorder()
    web = ca.policy_server(policy("enforce", "mx1.example.com"))
    with SMTPServer(plain) as smtp, web:
        zone = {
            "example.com": {AD: True, "MX": ["10 mx1.example.com.", "20 mx2.example.com."]},
            "mx1.example.com": {AD: True, "A": ["127.0.0.2"]},  # nothing listens there
            "mx2.example.com": {AD: True, "A": ["127.0.0.1"]},
            f"_{smtp.port}._tcp.mx1.example.com": {AD: True, "TLSA": ["3 1 1 " + "ab" * 32]},
            "_mta-sts.example.com": {"TXT": ['"v=STSv1; id=1"']},
            "mta-sts.example.com": {"A": [web.address]},
        }
        with DNSServer(zone) as dns:
            job = mx_job(tmp_path, [["a@example.com", "A", "A", "Team"]],
                         smtp_port=smtp.port, dns_port=dns.port, ca=ca)  # fmt: skip
            summary, _ = send_job(job)
    assert web.requests == 1
    assert (summary.sent, summary.deferred) == (0, 1)
    assert plain.mail_from == []
    counts = summary.tls["example.com"]
    assert counts.failures.get("validation-failure", 0) >= 1  # mx2 is not in the policy
