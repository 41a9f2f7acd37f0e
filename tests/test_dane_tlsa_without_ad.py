"""A TLSA record the resolver did not validate (no AD bit, though the MX
answer has it) is ignored: the mismatching record below would defer the mail
if it were trusted; instead the message is delivered as usual (here in plain
text, the server offering no STARTTLS) and no policy is counted for the
domain."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import MailRecorder, dane_zone, send_mx


def test_tlsa_without_ad_is_ignored(tmp_path: Path) -> None:
    handler = MailRecorder()
    with SMTPServer(handler) as smtp:
        zone = dane_zone(smtp.port, "3 1 1 " + "ab" * 32, tlsa_ad=False)
        summary = send_mx(tmp_path, zone, smtp.port, None)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    assert summary.tls == {}
