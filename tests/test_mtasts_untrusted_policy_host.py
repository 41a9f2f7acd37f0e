"""The policy host's certificate is checked: an enforce policy served with a
certificate no trusted CA issued is no policy at all (RFC 8461 3.3). With
nothing cached, the message goes as it would without MTA-STS (here in plain
text) and the failed fetch is counted (sts-policy-fetch-error)."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, PolicyServer, policy, send_mx, sts_zone


def test_untrusted_policy_host_is_no_policy(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    forged = ca.server_context(["mta-sts.example.com"], self_signed=True)
    with (
        SMTPServer(handler) as smtp,
        PolicyServer(forged, policy("enforce", "mx.example.com")) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert counts.policy == "no-policy-found"
    assert counts.failures == {"sts-policy-fetch-error": 1}
