"""A policy served by a redirect or as anything but text/plain is no policy
(RFC 8461 3.3): the enforce policy below would defer the mail (its MX host
offers no STARTTLS) if it were taken; instead the message is delivered as
usual and each fetch failure is counted."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, policy, send_mx, sts_zone


def test_redirect_or_wrong_type_is_no_policy(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    for n, (status, ctype) in enumerate([(301, "text/plain"), (200, "text/html")]):
        (tmp_path / str(n)).mkdir()
        handler = MailRecorder()
        web = ca.policy_server(policy("enforce", "mx.example.com"))
        web.status, web.ctype = status, ctype
        with SMTPServer(handler) as smtp, web:
            summary = send_mx(tmp_path / str(n), sts_zone(web), smtp.port, ca)
        assert web.requests == 1
        assert (summary.sent, summary.deferred) == (1, 0), (status, ctype)
        assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
        assert summary.tls["example.com"].failures == {"sts-policy-fetch-error": 1}
