"""The floor: what no signed message can cost less than.

A bare signature with ``cryptography`` over a message of the same size
(the hash of the message included, as DKIM hashes the body and headers),
and a bare SHA-256 of it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa


def cpu_per_call(fn: Callable[[], object], n: int) -> float:
    """CPU seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    cpu = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - cpu) / n


def sign_floor(algorithm: str) -> str:
    """The :func:`floor` key of a bare sign with DKIM ``algorithm``'s key."""
    return "rsa2048_sign" if algorithm == "rsa-sha256" else "ed25519_sign"


def floor(message: bytes, *, rsa_calls: int = 300, ed_calls: int = 3000) -> dict[str, float]:
    """Microseconds of CPU: ``rsa2048_sign``, ``ed25519_sign``, ``sha256``."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    return {
        "rsa2048_sign": 1e6
        * cpu_per_call(
            lambda: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()), rsa_calls
        ),
        # Ed25519 in DKIM (RFC 8463) signs the SHA-256 of the header hash input.
        "ed25519_sign": 1e6
        * cpu_per_call(lambda: ed_key.sign(hashlib.sha256(message).digest()), ed_calls),
        "sha256": 1e6 * cpu_per_call(lambda: hashlib.sha256(message).digest(), ed_calls),
    }
