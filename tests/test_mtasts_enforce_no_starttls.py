"""MTA-STS enforce, and the MX host offers no STARTTLS: the message defers
(never sent in plain text), the server never sees a MAIL command, and the
failure is counted as starttls-not-supported."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone


def test_enforce_without_starttls_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with (
        SMTPServer(handler) as smtp,
        ca.policy_server(policy("enforce", "mx.example.com")) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    assert handler.received == []
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success) == ("sts", 0)
    assert counts.failures["starttls-not-supported"] >= 1
