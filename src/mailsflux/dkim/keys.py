"""Loading DKIM private keys: PEM bytes or a file, checked once, cached.

A key is parsed once per ``(domain, selector, algorithm, source)`` where the
source is the PEM bytes themselves or a file path with its mtime, size and
inode (so replacing the file on disk is noticed by the next lookup).
"""

from __future__ import annotations

import math
import os
import re
import threading
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailsflux._idna import to_ascii
from mailsflux.errors import DKIMError, DKIMKeyError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KeySource: TypeAlias = "bytes | str | os.PathLike[str]"

RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)
RSA_MIN_BITS = 1024
RSA_MAX_BITS = 4096

# A DNS label as DKIM uses it: selectors may hold "_" (RFC 6376 section 3.1).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")

_CACHE_MAX = 512
_cache: dict[tuple[object, ...], PrivateKey] = {}
_cache_lock = threading.Lock()


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise DKIMError(
            f"unknown DKIM algorithm {algorithm!r}: use 'rsa-sha256' or 'ed25519-sha256'",
            field="algorithm",
        )
    return algorithm


def ascii_domain(domain: str, what: str) -> str:
    """``domain`` (or a selector) as the ASCII the DNS and ``d=`` need.

    A U-label becomes its IDNA 2008 A-label (UTS 46 non-transitional, as
    :mod:`mailsflux._idna` says why): d= and s= are A-labels (RFC 6376
    section 3.5, RFC 8616 section 4), and so are the names the key's TXT
    record is published under.  DKIMError naming ``what`` otherwise.
    """
    if domain.isascii():
        out = domain
    else:
        try:
            out = to_ascii(domain)
        except ValueError as exc:  # idna.IDNAError
            raise DKIMError(
                f"{what} {domain!r} is not a valid IDNA 2008 domain: {exc}", field=what
            ) from None
    if not out or len(out) > 253 or not _DOMAIN_RE.fullmatch(out):
        raise DKIMError(f"{what} {domain!r} is not a valid domain name", field=what)
    return out


def _kind(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    name = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
    return name or "of an unknown type"


def _rsa_sound(key: rsa.RSAPrivateKey) -> bool:
    """The checks that keep OpenSSL's RSA code on safe ground, in integers:
    odd factors whose product is the modulus, ``e * d = 1`` modulo
    lcm(p - 1, q - 1), the CRT values derived from them and reduced; then
    one signature that the public half verifies. The factors are not tested
    for primality (OpenSSL's costly part; pure-Python Miller-Rabin costs as
    much): a hand-made key with a composite factor that still signs
    correctly is used, as weak as the key its owner made."""
    k = key.private_numbers()
    p, q, d = k.p, k.q, k.d
    n, e = k.public_numbers.n, k.public_numbers.e
    if min(p, q) < 3 or p % 2 == 0 or q % 2 == 0 or p * q != n or not 1 < e < n or e % 2 == 0:
        return False
    if (e * d) % math.lcm(p - 1, q - 1) != 1:
        return False
    if k.dmp1 != d % (p - 1) or k.dmq1 != d % (q - 1) or not 0 < k.iqmp < p:
        return False
    if (k.iqmp * q) % p != 1:
        return False
    probe = b"mailsflux key check"
    sig = key.sign(probe, padding.PKCS1v15(), hashes.SHA256())
    try:
        key.public_key().verify(sig, probe, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _load_pem(pem: bytes) -> object:
    """The key in ``pem``. OpenSSL's own check of an RSA key tests p and q
    for primality, 40-90 ms for RSA-2048 here, paid by every process that
    signs (each worker, each CLI command): a key that passes
    :func:`_rsa_sound` (under a millisecond) is used without it, and any
    other goes through the full check, for OpenSSL's verdict. A key of a
    size DKIM signing refuses gets neither: it is refused for its size."""
    key = serialization.load_pem_private_key(
        pem, password=None, unsafe_skip_rsa_key_validation=True
    )
    if isinstance(key, rsa.RSAPrivateKey) and RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
        if not _rsa_sound(key):
            key = serialization.load_pem_private_key(pem, password=None)
    return key


def parse_private_key(pem: bytes, algorithm: str, *, file: str | None = None) -> PrivateKey:
    """Parse and check a PEM private key for ``algorithm``; errors name ``file``."""
    check_algorithm(algorithm)
    if b"-----BEGIN" not in pem:
        raise DKIMKeyError("not a PEM private key", file=file)
    if b"PRIVATE KEY-----" not in pem:
        if b"PUBLIC KEY-----" in pem:
            raise DKIMKeyError(
                "this is a public key; DKIM signing needs the private key", file=file
            )
        raise DKIMKeyError("not a PEM private key", file=file)
    try:
        key = _load_pem(pem)
    except TypeError:
        raise DKIMKeyError(
            "the private key is encrypted; store it without a passphrase", file=file
        ) from None
    except UnsupportedAlgorithm as exc:
        raise DKIMKeyError(f"unsupported private key type ({exc})", file=file) from None
    except ValueError:
        raise DKIMKeyError("not a PEM private key (malformed key data)", file=file) from None
    kind = _kind(key)
    if algorithm == RSA_SHA256:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DKIMKeyError(f"key is {kind} but algorithm is {algorithm}", file=file)
        bits = key.key_size
        if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
            raise DKIMKeyError(
                f"RSA key of {bits} bits: need {RSA_MIN_BITS} to {RSA_MAX_BITS}", file=file
            )
        return key
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DKIMKeyError(f"key is {kind} but algorithm is {algorithm}", file=file)
    return key


def _source(key: KeySource) -> tuple[bytes | None, str | None]:
    """(PEM bytes, None) for inline keys, (None, path) for files."""
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key), None
    if isinstance(key, str):
        if key.lstrip().startswith("-----BEGIN"):
            return key.encode("ascii", "replace"), None
        return None, key
    if isinstance(key, os.PathLike):
        return None, os.fspath(key)
    raise TypeError(f"DKIM key must be PEM bytes or a path, not {type(key).__name__}")


def _read(path: str) -> tuple[bytes, tuple[int, int, int]]:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        raise DKIMKeyError("key file not found", file=path) from None
    except IsADirectoryError:
        raise DKIMKeyError("key path is a directory, not a key file", file=path) from None
    except OSError as exc:
        raise DKIMKeyError(f"cannot read key file: {exc.strerror or exc}", file=path) from None
    return data, (st.st_mtime_ns, st.st_size, st.st_ino)


def load_private_key(
    key: KeySource,
    *,
    algorithm: str = RSA_SHA256,
    domain: str = "",
    selector: str = "",
) -> PrivateKey:
    """A checked private key, from the cache when the same source was seen before."""
    check_algorithm(algorithm)
    pem, path = _source(key)
    if path is None:
        assert pem is not None
        ck: tuple[object, ...] = (domain, selector, algorithm, pem)
        found = _cache.get(ck)
        if found is None:
            found = parse_private_key(pem, algorithm)
            _remember(ck, found)
        return found
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DKIMKeyError("key file not found", file=path) from None
    except OSError as exc:
        raise DKIMKeyError(f"cannot read key file: {exc.strerror or exc}", file=path) from None
    ck = (domain, selector, algorithm, os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino)
    found = _cache.get(ck)
    if found is None:
        data, stamp = _read(path)
        found = parse_private_key(data, algorithm, file=path)
        # Key the entry by what was actually read (the file may have changed).
        _remember((*ck[:4], *stamp), found)
    return found


def _remember(ck: tuple[object, ...], key: PrivateKey) -> None:
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[ck] = key


def clear_cache() -> None:
    """Forget every parsed key (tests; key rotation without a file change)."""
    with _cache_lock:
        _cache.clear()
