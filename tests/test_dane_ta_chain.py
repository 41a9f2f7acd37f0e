"""DANE-TA chain rules (RFC 7672 3.1.2 with RFC 5280's constraints), at unit
level with the chain a Python >= 3.13 SSLObject would give injected (3.11
lacks ``get_unverified_chain``): every issuer must be a CA allowed to sign
certificates (basicConstraints cA, keyUsage keyCertSign) within its
pathLenConstraint, and a certificate cryptography cannot use fails the
check (a reason, never an exception that would leak the connection)."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailsflux.delivery.dane import TLSA, dane_check

NOW = datetime.datetime.now(datetime.UTC)
HOST = "mx.victim.example"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    path_length: int | None = None,
    sign: bool | None = None,
    sans: tuple[str, ...] = (),
) -> x509.Certificate:
    issuer_cn, issuer_key = issuer or (cn, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    if sign is not None:
        usage = x509.KeyUsage(True, False, False, False, False, sign, False, False, False)
        b = b.add_extension(usage, critical=True)
    if sans:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return b.sign(issuer_key, hashes.SHA256())


def _der(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.DER)


class Sent:
    """What the TLS layer gives: the server certificate and the sent chain."""

    def __init__(self, chain: list[bytes]) -> None:
        self.chain = chain

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self.chain[0]

    def get_unverified_chain(self) -> list[bytes]:
        return self.chain


def _ta(anchor: x509.Certificate) -> tuple[TLSA, ...]:
    spki = anchor.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (TLSA(2, 1, 1, hashlib.sha256(spki).digest()),)


def check(chain: list[x509.Certificate], anchor: x509.Certificate) -> str | None:
    sent: Any = Sent([_der(c) for c in chain])
    return dane_check(sent, _ta(anchor), HOST)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_issued_by_the_anchor_directly_passes() -> None:
    ca_key, key = _key(), _key()
    ca = _cert("CA", ca_key, None, ca=True, sign=True)
    leaf = _cert(HOST, key, ("CA", ca_key), ca=False, sans=(HOST,))
    assert check([leaf, ca], ca) is None


def test_an_end_entity_certificate_cannot_issue() -> None:
    ca_key, att_key, key = _key(), _key(), _key()
    ca = _cert("CA", ca_key, None, ca=True)
    attacker = _cert(
        "attacker.example", att_key, ("CA", ca_key), ca=False, sans=("attacker.example",)
    )
    forged = _cert(HOST, key, ("attacker.example", att_key), ca=False, sans=(HOST,))
    assert check([forged, attacker, ca], ca) is not None


def test_an_issuer_without_key_cert_sign_cannot_issue() -> None:
    ca_key, mid_key, key = _key(), _key(), _key()
    ca = _cert("CA", ca_key, None, ca=True, sign=True)
    mid = _cert("Mid", mid_key, ("CA", ca_key), ca=True, sign=False)
    leaf = _cert(HOST, key, ("Mid", mid_key), ca=False, sans=(HOST,))
    assert check([leaf, mid, ca], ca) is not None


def test_path_length_is_honoured() -> None:
    ca_key, mid_key, key = _key(), _key(), _key()
    leaf_of = lambda ca: (  # noqa: E731
        _cert(HOST, key, ("Mid", mid_key), ca=False, sans=(HOST,)),
        _cert("Mid", mid_key, ("CA", ca_key), ca=True, sign=True),
        ca,
    )
    strict = _cert("CA", ca_key, None, ca=True, path_length=0, sign=True)
    assert check(list(leaf_of(strict)), strict) is not None
    loose = _cert("CA", ca_key, None, ca=True, path_length=1, sign=True)
    assert check(list(leaf_of(loose)), loose) is None


def test_an_unusable_certificate_is_a_failed_check() -> None:
    class Broken(Sent):
        def get_unverified_chain(self) -> list[bytes]:
            raise RuntimeError("cryptography cannot use this key")

    ca_key, key = _key(), _key()
    ca = _cert("CA", ca_key, None, ca=True)
    leaf = _cert(HOST, key, ("CA", ca_key), ca=False, sans=(HOST,))
    sent: Any = Broken([_der(leaf), _der(ca)])
    why = dane_check(sent, _ta(ca), HOST)
    assert why is not None and "(DANE)" in why
