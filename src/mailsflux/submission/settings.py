"""``[submission]``: where the listener listens, its TLS certificate, its limits."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated

import msgspec

from mailsflux._tls import server_context
from mailsflux.errors import ConfigError

#: TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 has its own list,
#: all of which qualify).
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class SubmissionSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The SMTP submission listener's settings (the server TOML's ``[submission]``).

    ``listen`` (``HOST:PORT``, as ``[http] listen``) offers STARTTLS (port
    587 in production); ``implicit_tls_listen`` is TLS from the first byte
    (465). Either may be ``""`` (off), not both; port 0 picks a free port.
    AUTH is refused until the connection is encrypted, so a certificate is
    required. ``rate`` is messages per second per credential after a
    ``burst``; ``None`` turns the limit off.
    """

    listen: str = "127.0.0.1:587"
    implicit_tls_listen: str = ""
    #: PEM certificate chain and private key; relative paths start at the config's folder.
    cert_file: str = ""
    key_file: str = ""
    #: The name in the greeting and the EHLO reply; "" = this machine's FQDN.
    hostname: str = ""
    #: Largest message accepted (bytes), advertised as SIZE.
    max_size: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024 * 1024
    max_recipients: Annotated[int, msgspec.Meta(ge=1)] = 100
    rate: Annotated[float, msgspec.Meta(gt=0)] | None = 50.0
    burst: Annotated[int, msgspec.Meta(ge=1)] = 100
    #: AUTH commands allowed per connection (a password guesser is cut off after them).
    max_auth_attempts: Annotated[int, msgspec.Meta(ge=1)] = 3
    #: Seconds a client may stay silent before the connection is closed (RFC 5321: 5 min).
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 300.0

    def __post_init__(self) -> None:
        if not self.listen and not self.implicit_tls_listen:
            raise ConfigError(
                "submission: listen and implicit_tls_listen are both off; set at least one",
                field="submission.listen",
            )
        for name in ("listen", "implicit_tls_listen"):
            if getattr(self, name):
                _address(getattr(self, name), name)
        for name in ("cert_file", "key_file"):
            if not getattr(self, name):
                raise ConfigError(
                    f"submission: {name} is required (AUTH is offered only over TLS)",
                    field=f"submission.{name}",
                )

    def addresses(self) -> dict[str, tuple[str, int]]:
        """``{"starttls": (host, port), "implicit_tls": (host, port)}``, the ones on."""
        out = {}
        if self.listen:
            out["starttls"] = _address(self.listen, "listen")
        if self.implicit_tls_listen:
            out["implicit_tls"] = _address(self.implicit_tls_listen, "implicit_tls_listen")
        return out

    def tls_context(self, base: str | Path = ".") -> ssl.SSLContext:
        """A server context: TLS 1.2 or newer (1.3 when the client has it),
        forward-secret AEAD suites, no compression or renegotiation."""
        cert, key = (Path(base) / self.cert_file), (Path(base) / self.key_file)
        ctx = server_context()
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.set_ciphers(_TLS12_CIPHERS)
        for path, field in ((cert, "cert_file"), (key, "key_file")):
            if not path.is_file():
                raise ConfigError(
                    f"submission: {field} not found", file=str(path), field=f"submission.{field}"
                )
        try:
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            raise ConfigError(
                f"submission: cannot load the certificate and key ({key}): {reason}",
                file=str(cert),
                field="submission.cert_file",
            ) from None
        return ctx


def _address(text: str, name: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"submission: {name} must be HOST:PORT, got {text!r}", field=f"submission.{name}"
        )
    return host.strip("[]"), int(port)


__all__ = ["SubmissionSpec"]
