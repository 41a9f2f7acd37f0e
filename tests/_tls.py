"""TLS for the SMTP tests: certificates made on the spot, an aiosmtpd server
offering STARTTLS (and AUTH after it), and an authenticator that records
every login it is offered."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests._mail import RecordingHandler, SMTPServer


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    names: list[str],
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if alt:
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    if ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return b.sign(issuer_key, hashes.SHA256())


def server_context(
    tmp: Path, names: list[str], *, ca_file: Path | None = None, stem: str = "server"
) -> ssl.SSLContext:
    """A server context for ``names``: self-signed, or issued by a fresh test CA
    whose certificate is written to ``ca_file``."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = None
    if ca_file is not None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_file.write_bytes(
            _cert("Mailsflux Test CA", ca_key, None, [], True).public_bytes(
                serialization.Encoding.PEM
            )
        )
        issuer = ("Mailsflux Test CA", ca_key)
    cert = _cert(names[0], key, issuer, names, ca=False)
    (tmp / f"{stem}-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{stem}-key.pem").write_bytes(_pem_key(key))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / f"{stem}-cert.pem", tmp / f"{stem}-key.pem")
    return ctx


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server context for ``mx.test``; its certificate is ``tmp/cert.pem``."""
    ctx = server_context(tmp, ["mx.test"])
    (tmp / "cert.pem").write_bytes((tmp / "server-cert.pem").read_bytes())
    return ctx


class LoginRecorder:
    """An aiosmtpd authenticator that accepts every login and remembers it."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, bytes, bytes]] = []
        self.lock = threading.Lock()

    def __call__(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            with self.lock:
                self.logins.append((mechanism, data.login, data.password))
        return AuthResult(success=True)


class TLSServer(SMTPServer):
    """aiosmtpd offering STARTTLS with ``ctx``; AUTH (after TLS) with ``logins``."""

    def __init__(
        self,
        handler: RecordingHandler,
        ctx: ssl.SSLContext,
        logins: LoginRecorder | None = None,
    ) -> None:
        super().__init__(handler)
        self.ctx = ctx
        self.logins = logins

    def __enter__(self) -> TLSServer:
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            return await self.loop.create_server(
                lambda: SMTP(
                    self.handler,
                    hostname="mx.test",
                    tls_context=self.ctx,
                    authenticator=self.logins,
                ),
                host="127.0.0.1",
                port=0,
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self
