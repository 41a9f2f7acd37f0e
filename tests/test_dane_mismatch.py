"""DANE with a validated TLSA record the server's certificate does not match:
the message defers, the server sees STARTTLS but never a MAIL command, and
the failure is counted as tlsa-invalid."""

from __future__ import annotations

from pathlib import Path

from tests._dns import AD, DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, mx_job
from tests._tls import TLSServer


def test_dane_mismatch_defers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    # A certificate valid for the MX name by the trusted CA: DANE still wins.
    with TLSServer(handler, ca.server_context(["mx.example.com"])) as smtp:
        zone = {
            "example.com": {AD: True, "MX": ["10 mx.example.com."]},
            "mx.example.com": {AD: True, "A": ["127.0.0.1"]},
            f"_{smtp.port}._tcp.mx.example.com": {AD: True, "TLSA": ["3 1 1 " + "ab" * 32]},
        }
        with DNSServer(zone) as dns:
            job = mx_job(
                tmp_path,
                [["a@example.com", "A", "A", "Team"]],
                smtp_port=smtp.port,
                dns_port=dns.port,
                ca=ca,
            )
            summary, _ = send_job(job)
    assert (summary.sent, summary.deferred) == (0, 1)
    assert handler.mail_from == []
    counts = summary.tls["example.com"]
    assert counts.policy == "dane"
    assert counts.success == 0
    assert counts.failures == {"tlsa-invalid": counts.failure}
