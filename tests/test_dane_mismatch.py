"""DANE with a validated TLSA record the server's certificate does not match:
the message defers, the server sees STARTTLS but never a MAIL command, and
the failure is counted as tlsa-invalid."""

from __future__ import annotations

from pathlib import Path

from tests._policy import CA, MailRecorder, dane_zone, send_mx
from tests._tls import TLSServer


def test_dane_mismatch_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    # A certificate valid for the MX name by the trusted CA: DANE still decides.
    with TLSServer(handler, ca.server_context(["mx.example.com"])) as smtp:
        summary = send_mx(tmp_path, dane_zone(smtp.port, "3 1 1 " + "ab" * 32), smtp.port, ca)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success) == ("dane", 0)
    assert counts.failures == {"tlsa-invalid": counts.failure}
