"""DANE-TA: a validated TLSA record (2 0 1) whose anchor is the server's own,
self-issued certificate, which names the MX host: delivered over STARTTLS
(the name is checked for DANE-TA, RFC 7672 3.1.2). The same record with a
certificate naming another host defers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests._dns import AD, DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, mx_job
from tests._tls import TLSServer


def run(tmp: Path, name: str) -> tuple[int, int, MailRecorder]:
    ca = CA(tmp)
    handler = MailRecorder()
    with TLSServer(handler, ca.server_context([name], self_signed=True)) as smtp:
        der = x509.load_pem_x509_certificate((tmp / f"{name}.crt").read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
        zone = {
            "example.com": {AD: True, "MX": ["10 mx.example.com."]},
            "mx.example.com": {AD: True, "A": ["127.0.0.1"]},
            f"_{smtp.port}._tcp.mx.example.com": {
                AD: True,
                "TLSA": [f"2 0 1 {hashlib.sha256(der).hexdigest()}"],
            },
        }
        with DNSServer(zone) as dns:
            job = mx_job(
                tmp,
                [["a@example.com", "A", "A", "Team"]],
                smtp_port=smtp.port,
                dns_port=dns.port,
                ca=None,
            )
            summary, _ = send_job(job)
    return summary.sent, summary.deferred, handler


def test_dane_ta_names_checked(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sent, deferred, handler = run(tmp_path / "a", "mx.example.com")
    assert (sent, deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    sent, deferred, handler = run(tmp_path / "b", "elsewhere.example")
    assert (sent, deferred) == (0, 1)
    assert handler.mail_from == []
