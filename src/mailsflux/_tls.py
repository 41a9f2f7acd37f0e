"""Every TLS context the project makes: TLS 1.2 minimum, 1.3 preferred."""

from __future__ import annotations

import ssl
from pathlib import Path

#: The floor, set explicitly so it holds whatever Python's or the system
#: OpenSSL's defaults are. No ceiling is set: OpenSSL negotiates the highest
#: version both sides offer, so TLS 1.3 is chosen whenever the peer has it.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def client_context(*, cafile: str | Path | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client context with the system's trust store (or ``cafile`` alone).

    ``verify=False`` encrypts without checking the certificate, for
    opportunistic STARTTLS (RFC 7435); the protocol floor holds either way.
    """
    ctx = ssl.create_default_context(cafile=None if cafile is None else str(cafile))
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = MINIMUM_VERSION
    return ctx


def server_context() -> ssl.SSLContext:
    """A server context without a certificate yet; the caller loads its chain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    return ctx
