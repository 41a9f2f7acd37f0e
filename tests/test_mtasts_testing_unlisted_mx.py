"""MTA-STS testing mode, and the domain's MX host is not one the policy
names: delivered as usual (testing never blocks mail, RFC 8461 5) and the
mismatch counted (validation-failure) under policy "sts-testing"."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone


def test_testing_mode_unlisted_mx_delivers_and_counts(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with (
        SMTPServer(handler) as smtp,
        ca.policy_server(policy("testing", "other.example.com")) as web,
    ):
        summary = send_mx(tmp_path, sts_zone(web), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert counts.policy == "sts-testing"
    assert counts.failures == {"validation-failure": 1}
