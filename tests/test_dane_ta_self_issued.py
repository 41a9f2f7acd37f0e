"""DANE-TA: a validated TLSA record (2 0 1) whose anchor is the server's own,
self-issued certificate, which names the MX host: delivered over STARTTLS
(the name is checked for DANE-TA, RFC 7672 3.1.2). The same record with a
certificate naming another host defers."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests._policy import CA, MailRecorder, dane_zone, send_mx
from tests._tls import TLSServer


def run(tmp: Path, name: str) -> tuple[int, int, MailRecorder]:
    handler = MailRecorder()
    with TLSServer(handler, CA(tmp).server_context([name], self_signed=True)) as smtp:
        cert = x509.load_pem_x509_certificate((tmp / f"{name}.crt").read_bytes())
        digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        summary = send_mx(tmp, dane_zone(smtp.port, f"2 0 1 {digest}"), smtp.port, None)
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
