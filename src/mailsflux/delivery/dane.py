"""DANE for SMTP (RFC 7672): which TLSA records count, and does a peer match them.

Only records the resolver vouched for (the AD bit: DNSSEC validated by the
resolver) are ever given here; :mod:`mailsflux.delivery.tlspolicy` makes
that check. Usable records (RFC 7672 3.1.3) are DANE-TA(2) and DANE-EE(3),
selectors Cert(0) and SPKI(1), matching types Full(0), SHA2-256(1) and
SHA2-512(2); PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP, and a domain
whose records are all unusable is treated as having none (3.1.3).

DANE-EE(3) matches the server's own certificate, and then neither its names
nor its dates are checked (3.1.1). DANE-TA(2) matches a certificate of the
chain the server sent; the server certificate must chain to it and name the
MX host (3.1.2). Python gives the sent chain from 3.13 on
(``SSLObject.get_unverified_chain``); before that only the server
certificate is available, so a DANE-TA record matches only when the server
certificate is itself the anchor (a self-issued one), and otherwise the
host fails closed: mail to it defers, it is never sent unverified.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import TYPE_CHECKING, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["TLSA", "dane_check", "usable"]

DANE_TA, DANE_EE = 2, 3
_DER = Encoding.DER


class TLSA(NamedTuple):
    usage: int
    selector: int
    mtype: int
    data: bytes


def usable(records: list[TLSA]) -> tuple[TLSA, ...]:
    """The records RFC 7672 3.1.3 lets SMTP use."""
    return tuple(
        r
        for r in records
        if r.usage in (DANE_TA, DANE_EE) and r.selector in (0, 1) and r.mtype in (0, 1, 2)
    )


def _selected(der: bytes, selector: int) -> bytes:
    if selector == 0:
        return der
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_der_x509_certificate(der).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _matches(der: bytes, r: TLSA) -> bool:
    data = _selected(der, r.selector)
    if r.mtype == 1:
        data = hashlib.sha256(data).digest()
    elif r.mtype == 2:
        data = hashlib.sha512(data).digest()
    return data == r.data


def dane_check(ssl_object: ssl.SSLObject, records: tuple[TLSA, ...], host: str) -> str | None:
    """None when the peer matches ``records``; else why not (the session must not go on)."""
    try:
        return _check(ssl_object, records, host)
    except Exception as exc:
        # A certificate cryptography cannot read or use (ValueError,
        # UnsupportedAlgorithm, ...) matches nothing: a failed check, which
        # closes this session; the domain's other MX hosts are still tried.
        return f"{host}: unusable server certificate ({type(exc).__name__}) (DANE)"


def _check(ssl_object: ssl.SSLObject, records: tuple[TLSA, ...], host: str) -> str | None:
    leaf = ssl_object.getpeercert(binary_form=True)
    if not leaf:
        return f"{host}: no certificate presented (DANE)"
    if any(r.usage == DANE_EE and _matches(leaf, r) for r in records):
        return None
    ta = [r for r in records if r.usage == DANE_TA]
    if ta:
        get_chain = getattr(ssl_object, "get_unverified_chain", None)
        chain = (
            [c if isinstance(c, bytes) else c.public_bytes() for c in get_chain()]
            if (get_chain is not None)
            else [leaf]
        )
        for der in chain:
            if any(_matches(der, r) for r in ta) and _chains_to(leaf, chain, der, host):
                return None
    return f"{host}: the server certificate matches none of its TLSA records (DANE)"


def _chains_to(leaf: bytes, chain: list[bytes], anchor: bytes, host: str) -> bool:
    """The leaf names ``host`` and is issued, through the sent chain, by
    ``anchor`` (the DANE-TA), every certificate on the way within its dates,
    and every issuer (the anchor too) a CA allowed to sign certificates at
    that depth: without that, any end-entity certificate the anchor issued
    (to anyone) could sign a certificate for any MX host.

    Checked here rather than with a WebPKI verifier: DANE-TA anchors a
    private CA (3.1.2), which need not follow the CA/Browser profile.
    """
    import datetime

    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    certs = [x509.load_der_x509_certificate(c) for c in chain]
    current = x509.load_der_x509_certificate(leaf)
    if not _names(current, host):
        return False
    # CA certificates between ``current`` and the leaf, self-issued ones
    # left out (RFC 5280 4.2.1.9: what pathLenConstraint limits).
    intermediates = 0
    for depth in range(len(certs) + 1):
        if depth and not _may_issue(current, intermediates):
            return False
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            return False
        if current.public_bytes(_DER) == anchor:
            return True
        issuer = next((c for c in certs if c.subject == current.issuer and c != current), None)
        if issuer is None:
            return False
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
        if depth and current.subject != current.issuer:
            intermediates += 1
        current = issuer
    return False


def _may_issue(cert: x509.Certificate, below: int) -> bool:
    """``cert`` is a CA (basicConstraints cA), may sign certificates
    (keyUsage keyCertSign, when it has keyUsage: RFC 5280 4.2.1.3), and its
    pathLenConstraint allows ``below`` CA certificates under it."""
    from cryptography import x509

    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca or (bc.path_length is not None and below > bc.path_length):
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(ku.key_cert_sign)


def _names(cert: x509.Certificate, host: str) -> bool:
    """``cert`` names ``host`` in its DNS SANs (a ``*.`` covers one label)."""
    from cryptography import x509

    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    host = host.lower().rstrip(".")
    for name in sans.value.get_values_for_type(x509.DNSName):
        name = name.lower().rstrip(".")
        if name == host or (
            name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in host
        ):
            return True
    return False
