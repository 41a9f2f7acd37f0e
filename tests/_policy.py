"""Peers for the outbound TLS policy tests (MTA-STS, DANE): a test CA that
issues certificates, a real HTTPS policy server on port 443 of its own
loopback address (127.x.y.z: root may bind it, and each test gets its own),
an MX that records MAIL commands, and a job routed to them by the test DNS
server."""

from __future__ import annotations

import hashlib
import http.server
import random
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailsflux.types import JobSummary
from tests._dns import AD, DNSServer
from tests._jobs import make_job, send_job
from tests._mail import RecordingHandler
from tests._tls import _cert, _pem_key

#: One recipient at the domain every policy test mails, example.com.
ONE = [["a@example.com", "A", "A", "Team"]]


class CA:
    """A test CA whose certificate is ``tmp/ca.pem`` (the job's ``tls_ca``)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.file = tmp / "ca.pem"
        self.file.write_bytes(
            _cert("Mailsflux Policy Test CA", self.key, None, [], True).public_bytes(
                serialization.Encoding.PEM
            )
        )

    def policy_server(self, body: str) -> PolicyServer:
        """A policy server for example.com with a certificate from this CA."""
        return PolicyServer(self.server_context(["mta-sts.example.com"]), body)

    def server_context(self, names: list[str], *, self_signed: bool = False) -> ssl.SSLContext:
        """A server context whose certificate names ``names``, issued by this CA
        (or self-signed); the certificate's DER is kept in ``self.der[names[0]]``."""
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = None if self_signed else ("Mailsflux Policy Test CA", self.key)
        cert = _cert(names[0], key, issuer, names, ca=False)
        stem = names[0]
        (self.tmp / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (self.tmp / f"{stem}.key").write_bytes(_pem_key(key))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tmp / f"{stem}.crt", self.tmp / f"{stem}.key")
        return ctx


def spki_sha256(cert_file: Path) -> str:
    """The TLSA 3 1 1 data of a PEM certificate: SHA-256 of its SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def policy(mode: str, *mx: str, max_age: int = 86400) -> str:
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


def sts_zone(web: PolicyServer, mx: str = "mx.example.com", txt_id: str = "1") -> dict[str, Any]:
    """example.com with one MX host (``mx``, on 127.0.0.1) and an MTA-STS
    record pointing at ``web``."""
    return {
        "example.com": {"MX": [f"10 {mx}."]},
        mx: {"A": ["127.0.0.1"]},
        "_mta-sts.example.com": {"TXT": [f'"v=STSv1; id={txt_id}"']},
        "mta-sts.example.com": {"A": [web.address]},
    }


def dane_zone(port: int, tlsa: str, *, tlsa_ad: bool = True) -> dict[str, Any]:
    """example.com, DNSSEC-validated (AD), whose MX host mx.example.com has the
    TLSA record ``tlsa`` (validated unless ``tlsa_ad`` is False) for ``port``."""
    return {
        "example.com": {AD: True, "MX": ["10 mx.example.com."]},
        "mx.example.com": {AD: True, "A": ["127.0.0.1"]},
        f"_{port}._tcp.mx.example.com": {AD: tlsa_ad, "TLSA": [tlsa]},
    }


def send_mx(
    tmp: Path, zone: dict[str, Any], smtp_port: int, ca: CA | None, rows: list[list[str]] = ONE
) -> JobSummary:
    """Send a job of ``rows`` to MX hosts, with ``zone`` served by the test DNS server."""
    with DNSServer(zone) as dns:
        job = mx_job(tmp, rows, smtp_port=smtp_port, dns_port=dns.port, ca=ca)
        return send_job(job)[0]


class PolicyServer:
    """HTTPS on ``address``:443 serving ``body`` at /.well-known/mta-sts.txt
    (``status`` and ``ctype`` may be changed to serve it wrongly; a 3xx
    status sends a Location to the same body elsewhere)."""

    def __init__(self, ctx: ssl.SSLContext, body: str) -> None:
        self.body = body.encode()
        self.requests = 0
        self.status = 200
        self.ctype = "text/plain"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                self.send_response(outer.status)
                if 300 <= outer.status < 400:
                    self.send_header("Location", "/policy.txt")
                self.send_header("Content-Type", outer.ctype)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        for _ in range(50):
            a, b, c = (random.randint(20, 250) for _ in range(3))
            self.address = f"127.{a}.{b}.{c}"
            try:
                self.httpd = http.server.ThreadingHTTPServer((self.address, 443), Handler)
                break
            except OSError:
                continue
        else:
            raise OSError("no free 127.x.y.z:443")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PolicyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join(5)
        self.httpd.server_close()


class MailRecorder(RecordingHandler):
    """Also records every MAIL FROM it is sent: a policy refusal must send none."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_from: list[str] = []

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.mail_from.append(address)
        envelope.mail_from = address
        return "250 OK"


def mx_job(
    tmp: Path, rows: list[list[str]], *, smtp_port: int, dns_port: int, ca: CA | None
) -> Path:
    """A job sending to MX hosts found through the test DNS server, on ``smtp_port``."""
    job = make_job(tmp, rows, attempts=1)
    text = job.read_text().replace('relay = "smtp+plain://127.0.0.1:1"\n', "")
    text += f'mx_port = {smtp_port}\nnameservers = ["127.0.0.1:{dns_port}"]\n'
    if ca is not None:
        text += f'tls_ca = "{ca.file}"\n'
    job.write_text(text)
    return job


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
