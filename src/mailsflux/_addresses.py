"""Email address checks and the encodings SMTP needs.

An address is accepted when its local part is a dot-atom (RFC 5322 3.4.1;
UTF-8 allowed per RFC 6532) and its domain is a host name whose labels IDNA
can encode. Quoted local parts are refused on purpose: receivers mishandle
them and no list sender needs them.
"""

from __future__ import annotations

import re

from mailsflux._errors import AddressError

# atext of RFC 5322 3.2.3, plus any non-ASCII character (RFC 6532 3.2).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_LOCAL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class Address:
    """A checked address: ``local@domain`` with the domain in IDNA form."""

    __slots__ = ("domain", "local", "smtputf8")

    def __init__(self, local: str, domain: str, smtputf8: bool) -> None:
        self.local = local
        self.domain = domain
        self.smtputf8 = smtputf8

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def idna_domain(domain: str) -> str:
    """Return ``domain`` lower-cased, in IDNA (xn--) form, or raise."""
    d = domain.strip().rstrip(".").lower()
    if not d:
        raise AddressError("empty domain")
    if not d.isascii():
        try:
            d = d.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AddressError(f"domain {domain!r} cannot be IDNA-encoded: {exc}") from None
    labels = d.split(".")
    if len(labels) < 2 or len(d) > 253:
        raise AddressError(f"domain {domain!r} is not a fully qualified host name")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise AddressError(f"domain {domain!r} has an invalid label {label!r}")
    return d


def parse_address(text: str) -> Address:
    """Check a bare ``local@domain`` address; raise :class:`AddressError` naming the fault."""
    addr = text.strip()
    if not addr:
        raise AddressError("empty address")
    if any(c in addr for c in "\r\n\x00"):
        raise AddressError(f"address {addr!r} holds a control character")
    local, at, domain = addr.rpartition("@")
    if not at or not local:
        raise AddressError(f"address {addr!r} has no local part and domain")
    if len(local.encode("utf-8")) > 64:
        raise AddressError(f"address {addr!r}: local part longer than 64 octets")
    if not _LOCAL_RE.fullmatch(local):
        raise AddressError(f"address {addr!r}: invalid local part")
    try:
        dom = idna_domain(domain)
    except AddressError as exc:
        raise AddressError(f"address {addr!r}: {exc.message}") from None
    return Address(local, dom, not local.isascii())


def split_mailbox(text: str) -> tuple[str, str]:
    """Split ``Display Name <addr>`` (or a bare address) into its two parts."""
    t = text.strip()
    if t.endswith(">") and "<" in t:
        name, _, rest = t.rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return name, rest[:-1].strip()
    return "", t
