"""An RSA key is loaded without OpenSSL's slow primality check only when it
is sound (odd factors of the modulus, d the inverse of e, CRT values right,
one signature that verifies); a key that is not is refused, as before, with
one line naming the file, and never used to sign."""

from __future__ import annotations

import base64
import math
import secrets
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailsflux.dkim import Signer, load_private_key
from mailsflux.dkim import keys as _dkim_keys
from mailsflux.errors import DKIMKeyError

_GOOD = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_N = _GOOD.private_numbers()


def _pem(numbers: rsa.RSAPrivateNumbers) -> bytes:
    # Built without validation: how a damaged or hand-made key file looks.
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _with(**change: int) -> rsa.RSAPrivateNumbers:
    f = {
        "p": _N.p,
        "q": _N.q,
        "d": _N.d,
        "dmp1": _N.dmp1,
        "dmq1": _N.dmq1,
        "iqmp": _N.iqmp,
    }
    f.update(change)
    return rsa.RSAPrivateNumbers(public_numbers=_N.public_numbers, **f)


BROKEN: dict[str, Callable[[], rsa.RSAPrivateNumbers]] = {
    "d off by two": lambda: _with(d=_N.d + 2),
    "dmp1 wrong": lambda: _with(dmp1=_N.dmp1 ^ 4),
    "dmq1 wrong": lambda: _with(dmq1=_N.dmq1 ^ 4),
    "iqmp wrong": lambda: _with(iqmp=_N.iqmp + 1),
    "p and q swapped without iqmp": lambda: _with(p=_N.q, q=_N.p, dmp1=_N.dmq1, dmq1=_N.dmp1),
    "iqmp not reduced": lambda: _with(iqmp=_N.iqmp + _N.p),
}


def _prime(bits: int) -> int:
    """A random prime of ``bits`` bits (Miller-Rabin, 40 rounds): test keys only."""
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):
            x = pow(secrets.randbelow(n - 3) + 2, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def _small_key(bits: int) -> rsa.RSAPrivateNumbers:
    """A sound RSA key smaller than cryptography will generate."""
    e = 65537
    while True:
        p, q = _prime(bits // 2), _prime(bits // 2)
        if p != q and math.gcd(e, math.lcm(p - 1, q - 1)) == 1:
            break
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    return rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q)
    )


def test_key_too_small_is_refused_for_its_size(tmp_path: Path) -> None:
    # Refused by size, before any check could fail on it for another reason
    # (too small for a PKCS#1 SHA-256 signature, the probe would fail).
    _dkim_keys.clear_cache()
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(_small_key(384)))
    with pytest.raises(DKIMKeyError, match=r"RSA key of 38[34] bits: need 1024 to 4096"):
        load_private_key(str(path), algorithm="rsa-sha256")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_unsound_rsa_key_refused(tmp_path: Path, name: str) -> None:
    _dkim_keys.clear_cache()
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(BROKEN[name]()))
    with pytest.raises(DKIMKeyError) as got:
        load_private_key(str(path), algorithm="rsa-sha256")
    line = str(got.value)
    assert "\n" not in line
    assert str(path) in line


def _watch_loads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each PEM load asks OpenSSL to skip its check, in order."""
    _dkim_keys.clear_cache()
    asked: list[bool] = []
    real = serialization.load_pem_private_key

    def watch(data: bytes, password: bytes | None, **kw: bool) -> object:
        asked.append(kw.get("unsafe_skip_rsa_key_validation", False))
        return real(data, password, **kw)

    monkeypatch.setattr(_dkim_keys.serialization, "load_pem_private_key", watch)
    return asked


def test_sound_rsa_key_skips_the_slow_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every load of a sound key asks OpenSSL to skip its check.
    asked = _watch_loads(monkeypatch)
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(_N))
    key = load_private_key(str(path), algorithm="rsa-sha256")
    assert asked == [True]
    # ...and the key signs what an independent verifier accepts.
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    signer = Signer(key=str(path), domain="example.org", selector="s1")
    msg = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
    signed = signer.sign(msg)
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: txt)


def test_unsound_key_gets_the_full_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _watch_loads(monkeypatch)
    path = tmp_path / "k.pem"
    path.write_bytes(_pem(BROKEN["d off by two"]()))
    with pytest.raises(DKIMKeyError):
        load_private_key(str(path), algorithm="rsa-sha256")
    assert asked == [True, False]
