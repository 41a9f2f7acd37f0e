"""The floors: what no signed, delivered message can cost less than.

A bare signature over the message given (the hash of the message
included, as DKIM hashes the body and headers) by the library the engine
signs with: ``cryptography`` for RSA, for Ed25519 libsodium where PyNaCl
is installed (:mod:`mailsflux.dkim.sodium`), with cryptography's Ed25519
beside it; a bare SHA-256 of it; and the SMTP exchange alone: the same message
sent into the same sink by a client in C that does nothing else
(:func:`exchange_floor`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailsflux.benchmark._exchange import exchange
from mailsflux.benchmark.result import BenchError
from mailsflux.delivery import data_payload, envelope_commands
from mailsflux.dkim.sodium import ed25519_signer


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
    """Microseconds of CPU: ``rsa2048_sign``, ``ed25519_sign`` (the sign a
    job's Ed25519 signer makes), ``ed25519_sign_cryptography`` (the same
    through cryptography, which it is where PyNaCl is missing), ``sha256``."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_sign, _ = ed25519_signer(ed_key)
    return {
        "rsa2048_sign": 1e6
        * cpu_per_call(
            lambda: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()), rsa_calls
        ),
        # Ed25519 in DKIM (RFC 8463) signs the SHA-256 of the header hash input.
        "ed25519_sign": 1e6
        * cpu_per_call(lambda: ed_sign(hashlib.sha256(message).digest()), ed_calls),
        "ed25519_sign_cryptography": 1e6
        * cpu_per_call(lambda: ed_key.sign(hashlib.sha256(message).digest()), ed_calls),
        "sha256": 1e6 * cpu_per_call(lambda: hashlib.sha256(message).digest(), ed_calls),
    }


def exchange_floor(
    port: int,
    mail_from: str,
    rcpt_to: str,
    data: bytes,
    *,
    count: int,
    connections: int,
    host: str = "127.0.0.1",
    timeout: float = 30.0,
) -> dict[str, float]:
    """The SMTP exchange alone: ``data`` sent ``count`` times into the server
    at ``host:port`` over ``connections`` connections by the compiled client
    (:mod:`mailsflux.benchmark._exchange`), PIPELINING when offered.

    The envelope is the engine's own (:func:`~mailsflux.delivery.envelope_commands`):
    ``MAIL FROM`` says ``SIZE=`` the message's length when the server
    offers SIZE, as the engine's sessions do.

    Returns ``exchange_us`` (CPU a message, user and system),
    ``exchange_system_us`` (the kernel's part), ``exchange_msg_s``,
    ``exchange_pipelining`` and ``exchange_sized`` (1.0 or 0.0). A refused
    or short run raises :class:`BenchError` with the server's words.
    """
    plain, sized_envelope = (envelope_commands(mail_from, rcpt_to, n) for n in (-1, len(data)))
    if plain is None or sized_envelope is None:
        raise BenchError(
            f"the exchange floor: {mail_from!r} to {rcpt_to!r}: not ASCII envelope addresses"
        )
    delivered, user, system, wall, pipelining, error, sized = exchange(
        host, port, plain, data_payload(data), count, connections, timeout, sized_envelope
    )
    if error or delivered != count:
        why = error or "the server took fewer than were sent"
        raise BenchError(f"the exchange floor: {why} ({delivered} of {count} taken)")
    return {
        "exchange_us": 1e6 * (user + system) / count,
        "exchange_system_us": 1e6 * system / count,
        "exchange_msg_s": count / wall if wall > 0 else 0.0,
        "exchange_pipelining": 1.0 if pipelining else 0.0,
        "exchange_sized": 1.0 if sized else 0.0,
    }
