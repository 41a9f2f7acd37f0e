"""MTA-STS enforce, and the MX host's STARTTLS certificate (from a trusted
CA) names another host: the message defers, no MAIL is sent, and the
failure is counted as certificate-host-mismatch."""

from __future__ import annotations

from pathlib import Path

from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone
from tests._tls import TLSServer


def test_enforce_wrong_certificate_name_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with (
        TLSServer(handler, ca.server_context(["other.example.org"])) as smtp,
        ca.policy_server(policy("enforce", "mx.example.com")) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    counts = summary.tls["example.com"]
    assert counts.failures == {"certificate-host-mismatch": counts.failure}
    assert counts.failure >= 1
