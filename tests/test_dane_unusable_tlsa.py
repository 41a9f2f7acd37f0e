"""Validated TLSA records that are all unusable for SMTP (here PKIX-TA, 0 0 1)
still say the host does TLS (RFC 7672 2.2; Postfix's "encrypt"): STARTTLS is
required but the peer is not authenticated. A server offering no STARTTLS
gets no mail (the message defers); one with a self-signed certificate for
another name gets it."""

from __future__ import annotations

from pathlib import Path

from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, dane_zone, send_mx
from tests._tls import TLSServer

UNUSABLE = "0 0 1 " + "ab" * 32


def test_unusable_tlsa_requires_tls_without_authentication(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = MailRecorder()
    with SMTPServer(plain) as smtp:
        summary = send_mx(tmp_path / "a", dane_zone(smtp.port, UNUSABLE), smtp.port, None)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert plain.mail_from == []
    assert summary.tls["example.com"].failures == {"starttls-not-supported": 1}

    tls = MailRecorder()
    ctx = CA(tmp_path / "b").server_context(["unrelated.test"], self_signed=True)
    with TLSServer(tls, ctx) as smtp:
        summary = send_mx(tmp_path / "b", dane_zone(smtp.port, UNUSABLE), smtp.port, None)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in tls.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success) == ("dane", 1)
