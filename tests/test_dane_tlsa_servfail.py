"""A secure domain's MX host whose TLSA lookup fails (SERVFAIL) is unusable
(RFC 7672 2.2.1: it may have records we cannot see): the message defers
rather than going to it in plain text, and the failure is counted as
tlsa-invalid."""

from __future__ import annotations

from pathlib import Path

from tests._dns import SERVFAIL
from tests._mail import SMTPServer
from tests._policy import MailRecorder, dane_zone, send_mx


def test_tlsa_servfail_defers(tmp_path: Path) -> None:
    handler = MailRecorder()
    with SMTPServer(handler) as smtp:
        zone = dane_zone(smtp.port, "3 1 1 " + "ab" * 32)
        zone[f"_{smtp.port}._tcp.mx.example.com"] = SERVFAIL
        summary = send_mx(tmp_path, zone, smtp.port, None)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.failures) == ("dane", {"tlsa-invalid": 1})
