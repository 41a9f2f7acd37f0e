"""A cached MTA-STS policy outlives its server: a first run fetches an
enforce policy (and delivers over good TLS); then the policy server is gone,
the TXT id changes (so a fetch is attempted) and the MX host has lost
STARTTLS. The second run, a fresh scheduler reading the spool directory's
cache, still enforces: the message defers, no MAIL is sent, and both the
fetch error and the TLS failure are counted."""

from __future__ import annotations

from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, mx_job, policy, sts_zone
from tests._tls import TLSServer


def test_cached_policy_used_when_fetch_fails(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    rows = [["a@example.com", "A", "A", "Team"]]
    good = MailRecorder()
    web = ca.policy_server(policy("enforce", "mx.example.com"))
    with DNSServer(sts_zone(web)) as dns:
        with web, TLSServer(good, ca.server_context(["mx.example.com"])) as smtp:
            job = mx_job(tmp_path, rows, smtp_port=smtp.port, dns_port=dns.port, ca=ca)
            first, _ = send_job(job)
        assert (first.sent, web.requests) == (1, 1)

        dns.zone["_mta-sts.example.com"] = {"TXT": ['"v=STSv1; id=2"']}
        plain = MailRecorder()
        with SMTPServer(plain) as smtp:
            job = mx_job(tmp_path, rows, smtp_port=smtp.port, dns_port=dns.port, ca=ca)
            second, _ = send_job(job)
    assert (second.sent, second.deferred) == (0, 1)
    assert plain.mail_from == []
    counts = second.tls["example.com"]
    assert counts.policy == "sts"
    assert counts.failures["sts-policy-fetch-error"] == 1
    assert counts.failures["starttls-not-supported"] >= 1
