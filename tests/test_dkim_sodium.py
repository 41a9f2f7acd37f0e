"""Ed25519 through libsodium (mailsflux.dkim.sodium): cryptography's signatures, bit for bit.

Ed25519 is deterministic (RFC 8032 section 5.1.6), so the library that
signs is invisible in the mail: the same key and input give the same
signature. These tests hold libsodium's signatures to cryptography's, the
whole DKIM-Signature field to the one cryptography's sign gives, and check
that a missing or disagreeing libsodium leaves the signing to cryptography.
"""

from __future__ import annotations

import sys

import dkim
import nacl.bindings
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.dkim import Signer
from mailsflux.dkim.keygen import dns_txt_record
from mailsflux.dkim.sodium import CRYPTOGRAPHY, LIBSODIUM, ed25519_signer

MESSAGE = (
    b"From: Ann <ann@example.com>\r\nTo: bo@example.net\r\nSubject: hi\r\n"
    b"Date: Wed, 02 Dec 2026 08:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
    b"Hello, Bo.\r\n"
)


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _signer(key: ed25519.Ed25519PrivateKey) -> Signer:
    return Signer(domain="example.com", selector="ed", key=_pem(key), algorithm="ed25519-sha256")


@settings(max_examples=300, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), data=st.binary(max_size=300))
def test_libsodium_gives_cryptographys_signature(seed: bytes, data: bytes) -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    sign, library = ed25519_signer(key)
    assert library == LIBSODIUM
    signature = sign(data)
    assert signature == key.sign(data)
    key.public_key().verify(signature, data)  # raises if it does not verify


def test_a_job_signer_signs_through_libsodium_and_dkimpy_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = _signer(key)
    assert signer.sign_library == LIBSODIUM
    signed = signer.sign(MESSAGE)  # t= now: dkimpy refuses a signature from the future
    txt = dns_txt_record(_pem(key), algorithm="ed25519-sha256").encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return txt if name == b"ed._domainkey.example.com." else b""

    assert dkim.verify(signed, dnsfunc=dnsfunc)


def test_without_pynacl_cryptography_signs_the_same_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    fast = _signer(key)
    # A module set to None in sys.modules is one its import fails for.
    monkeypatch.setitem(sys.modules, "nacl.bindings", None)
    plain = _signer(key)
    assert (fast.sign_library, plain.sign_library) == (LIBSODIUM, CRYPTOGRAPHY)
    assert ed25519_signer(key)[1] == CRYPTOGRAPHY
    # The whole message, DKIM-Signature field and all, byte for byte.
    batch = [(MESSAGE, 1_800_000_000), (MESSAGE.replace(b"Bo.", b"Cy."), 1_800_000_001)]
    assert fast.sign_many(batch) == plain.sign_many(batch)


def test_a_libsodium_that_disagrees_never_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    real = nacl.bindings.crypto_sign

    def flipped(message: bytes, secret: bytes) -> bytes:
        signed = bytearray(real(message, secret))
        signed[0] ^= 1
        return bytes(signed)

    monkeypatch.setattr(nacl.bindings, "crypto_sign", flipped)
    key = ed25519.Ed25519PrivateKey.generate()
    sign, library = ed25519_signer(key)
    assert library == CRYPTOGRAPHY
    assert sign(b"data") == key.sign(b"data")
