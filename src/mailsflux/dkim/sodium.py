"""Ed25519 signatures through libsodium (PyNaCl), cryptography's where it is not.

Ed25519 (RFC 8032 section 5.1.6) is deterministic: one key and one input
give one signature, whichever library computes it. libsodium's is about a
third faster than the one cryptography's OpenSSL 3 uses (15.6 against 22.3
us a DKIM sign of a SHA-256 on an AMD EPYC): its field arithmetic works in
five 51-bit limbs and 128-bit products where OpenSSL's portable code uses
ten 25.5-bit ones. A job signs every message, so the difference (about
7 us) is about a tenth of a whole Ed25519 job's CPU a message.

The key stays cryptography's object (loading, checking, the public key in
DNS); libsodium gets its 64-byte secret (seed and public key), made once
a signer. Before it is used, it signs a probe and must give cryptography's
signature, so a libsodium that disagreed would never sign a message: the
signer falls back to cryptography then.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

#: The library :func:`ed25519_signer` signs with, by the function it returned.
LIBSODIUM, CRYPTOGRAPHY = "libsodium", "cryptography"

#: Signed by both libraries before libsodium is trusted with a key.
_PROBE = b"mailsflux: libsodium and cryptography agree on this key"
_SIG_LEN = 64


def ed25519_signer(key: ed25519.Ed25519PrivateKey) -> tuple[Callable[[bytes], bytes], str]:
    """``(sign, library)``: ``sign(data)`` is ``key.sign(data)`` for
    ``bytes`` data (what DKIM signs; PyNaCl takes no other buffer), through
    libsodium when PyNaCl is installed and agrees with cryptography on this
    key, else cryptography's own."""
    try:
        from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
    except ImportError:
        return key.sign, CRYPTOGRAPHY
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    _, secret = crypto_sign_seed_keypair(seed)

    # crypto_sign gives the signature followed by the data (the "signed
    # message"); PyNaCl's detached form builds a SignedMessage object a call.
    def sign(data: bytes) -> bytes:
        return crypto_sign(data, secret)[:_SIG_LEN]

    if sign(_PROBE) != key.sign(_PROBE):
        return key.sign, CRYPTOGRAPHY
    return sign, LIBSODIUM
