"""MTA-STS enforce whose mx patterns do not name the domain's MX host: the
message defers even though the host has good TLS, nothing is sent to it, and
the failure is counted (validation-failure)."""

from __future__ import annotations

from pathlib import Path

from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone
from tests._tls import TLSServer


def test_enforce_mx_not_in_policy_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    # "*.example.com" covers one label only (RFC 8461 4.1): not a.mx.example.com.
    body = policy("enforce", "*.example.com", "mail.example.net")
    with (
        TLSServer(handler, ca.server_context(["a.mx.example.com"])) as smtp,
        ca.policy_server(body) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web, mx="a.mx.example.com"), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    counts = summary.tls["example.com"]
    assert counts.policy == "sts"
    assert counts.failures == {"validation-failure": counts.failure}
    assert counts.failure >= 1
