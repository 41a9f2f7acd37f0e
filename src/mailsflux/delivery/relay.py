"""Where to hand mail over: a relay (smarthost) parsed from its URL."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import unquote, urlsplit

import msgspec

from mailsflux.errors import ConfigError


def is_loopback(host: str) -> bool:
    """``localhost`` (RFC 6761 6.3), ``*.localhost`` or a loopback address."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_url(url: str) -> str:
    """``url`` as it may be shown: anything that could be a password is ``***``.

    Not what urlsplit finds, which misses a password in a URL missing its
    "//", or holding a "/" or "@": from the first ":" of the user part to the
    last "@"; with no "@", whatever follows the host's ":" that is not a port
    (``smtp://user:pass`` with the host forgotten).
    """
    sep = url.find("://")
    start = sep + 3 if sep >= 0 else 0
    at = url.rfind("@")
    if at >= 0:
        colon = url.find(":", 0 if at < start else start, at)
        return url if colon < 0 else f"{url[:colon]}:***{url[at:]}"
    end = url.find("/", start)
    end = len(url) if end < 0 else end
    host_end = url.find("]", start, end) + 1 if url.startswith("[", start) else start
    colon = url.find(":", max(host_end, start), end)
    if colon >= 0 and not url[colon + 1 : end].isdigit():
        return f"{url[:colon]}:***{url[end:]}"
    return url


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

    @property
    def cleartext_warning(self) -> str | None:
        """Why this relay is unsafe, or None: ``smtp+plain://`` with credentials
        to a host that is not loopback sends AUTH in clear text over a network."""
        if self.tls != "none" or self.password is None or is_loopback(self.host):
            return None
        return (
            f"relay smtp+plain://{self.username}:***@{self.host}:{self.port} sends the password"
            " in clear text to a host that is not loopback: use smtp:// (STARTTLS) or smtps://"
        )

    @classmethod
    def parse(cls, url: str) -> Relay:
        """Raise :class:`ConfigError` (a ValueError) for a URL that is not a relay.

        The error quotes the URL masked by :func:`mask_url`, never its password.
        """
        shown = mask_url(url)
        try:
            u = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL": an unclosed [
            raise ConfigError(f"relay {shown!r}: {exc}") from None
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
