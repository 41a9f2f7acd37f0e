"""The one comparison form of an email address.

Parsing is compiled (:func:`mailsflux.compose.parse_address`). An address is
accepted when its local part is a dot-atom (RFC 5322 3.4.1; UTF-8 allowed per
RFC 6532, except surrogates, C1 controls, U+2028/U+2029 and U+FFFE/U+FFFF) of at most 64
octets, and its domain a host name whose labels IDNA 2008 can encode
(UTS 46 non-transitional, :mod:`mailsflux._idna`). Quoted local
parts are refused on purpose: receivers mishandle them and no list sender
needs them. ``Address.smtputf8`` is true only for a non-ASCII local part.

:func:`normalize_address` is the form every comparison of two addresses
uses (suppression file, tracking-store suppression, duplicate rows).
"""

from __future__ import annotations

import unicodedata

from mailsflux.compose._mimebuild import idna_domain
from mailsflux.errors import AddressError


def normalize_address(address: str) -> str:
    """The comparison key of ``address``: equal for every way of writing it.

    The domain as its lower-case IDNA A-label without a trailing dot (as
    :func:`parse_address` makes it, so a U-label, an A-label and a root dot
    compare equal); the local part in NFC (RFC 6532 section 3.1) and lower
    case.  Local parts are case-sensitive in principle (RFC 5321 2.4), but
    for "never mail this person" and "already mailed" matching in either case
    is the safe side.  Text that is no valid address is only trimmed and
    lower-cased, so a comparison never fails.
    """
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", text).lower()
    try:
        domain = idna_domain(domain)
    except AddressError:
        domain = domain.rstrip(".").lower()
    return unicodedata.normalize("NFC", local).lower() + "@" + domain


__all__ = ["normalize_address"]
