"""The MX answer has no AD bit, the MX host's TLSA answer has it: no DANE
(RFC 7672 2.2: the MX host name itself must come from a secure answer, or
an attacker could have substituted it). The mismatching TLSA record below
would defer the mail if trusted; the message is delivered as usual and no
policy is counted."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import MailRecorder, dane_zone, send_mx


def test_mx_without_ad_means_no_dane(tmp_path: Path) -> None:
    handler = MailRecorder()
    with SMTPServer(handler) as smtp:
        zone = dane_zone(smtp.port, "3 1 1 " + "ab" * 32)
        zone["example.com"] = {"MX": ["10 mx.example.com."]}  # no AD
        summary = send_mx(tmp_path, zone, smtp.port, None)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    assert summary.tls == {}
