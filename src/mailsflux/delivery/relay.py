"""Where to hand mail over: a relay (smarthost) parsed from its URL."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

import msgspec

from mailsflux.errors import ConfigError


class Relay(msgspec.Struct, frozen=True):
    """Where to hand mail over: parsed from ``smtp://`` / ``smtps://`` URLs.

    ``smtp://`` uses STARTTLS when the relay offers it, and requires it, with
    the certificate checked against ``host``, when the URL holds credentials;
    ``smtp+plain://`` never uses TLS (a local sink; with credentials, unsafe:
    the password goes in clear text); ``smtps://`` is TLS from the first byte.
    """

    host: str
    port: int
    tls: Literal["starttls", "none", "implicit"] = "starttls"
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        secret = ", password='***'" if self.password is not None else ""
        return (
            f"Relay(host={self.host!r}, port={self.port}, tls={self.tls!r},"
            f" username={self.username!r}{secret})"
        )

    __str__ = __repr__

    @property
    def session_tls(self) -> Literal["opportunistic", "required", "none", "implicit"]:
        """The SMTP session's TLS mode for this relay's URL scheme.

        Credentials go only over TLS with a verified certificate, so with
        them STARTTLS is required, never opportunistic (RFC 8314 3).
        """
        if self.tls == "starttls":
            return "required" if self.username is not None else "opportunistic"
        return self.tls

    @classmethod
    def parse(cls, url: str) -> Relay:
        """Raise :class:`ConfigError` (a ValueError) for a URL that is not a relay."""
        u = urlsplit(url)
        # Errors quote the URL without its password.
        shown = url.replace(f":{u.password}@", ":***@") if u.password else url
        modes: dict[str, tuple[Literal["starttls", "none", "implicit"], int]] = {
            "smtp": ("starttls", 25),
            "smtp+plain": ("none", 25),
            "smtps": ("implicit", 465),
        }
        if u.scheme not in modes or not u.hostname:
            raise ConfigError(
                f"relay {shown!r}: expected smtp://host[:port], smtp+plain://... or smtps://..."
            )
        tls, default_port = modes[u.scheme]
        try:
            port = u.port or default_port
        except ValueError:
            raise ConfigError(f"relay {shown!r}: invalid port") from None
        return cls(
            host=u.hostname,
            port=port,
            tls=tls,
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
        )
