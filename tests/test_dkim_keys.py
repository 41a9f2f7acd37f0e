"""Key loading errors, the key cache, and key generation (mailsflux.dkim.keygen)."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mailsflux.dkim import Signer, load_private_key
from mailsflux.dkim import keys as _dkim_keys
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key, write_key_pair
from mailsflux.errors import DKIMError, DKIMKeyError

MESSAGE = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: k\r\n\r\nbody\r\n"


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    _dkim_keys.clear_cache()


@pytest.mark.parametrize(
    ("content", "algorithm", "message"),
    [
        (b"this is not a key\n", "rsa-sha256", "not a PEM private key"),
        (b"", "rsa-sha256", "not a PEM private key"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "rsa-sha256",
            "not a PEM private key",
        ),
        ("ed25519", "rsa-sha256", "key is Ed25519 but algorithm is rsa-sha256"),
        ("rsa-2048", "ed25519-sha256", "key is RSA but algorithm is ed25519-sha256"),
        ("ec", "rsa-sha256", "but algorithm is rsa-sha256"),
        ("rsa-512", "rsa-sha256", "RSA key of 512 bits: need 1024 to 4096"),
        ("public", "rsa-sha256", "public key"),
        ("encrypted", "rsa-sha256", "encrypted"),
    ],
)
def test_bad_key_files_name_the_file(
    tmp_path: Path, content: bytes | str, algorithm: str, message: str
) -> None:
    if isinstance(content, str):
        content = _make(content)
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    for source in (str(path), path):
        with pytest.raises(DKIMKeyError) as info:
            load_private_key(source, algorithm=algorithm)
        assert message in info.value.message
        assert info.value.file == str(path)
        assert str(path) in str(info.value)
        with pytest.raises(DKIMKeyError) as info:
            Signer(domain="example.com", selector="s", key=source, algorithm=algorithm)
        assert info.value.file == str(path)
    # The same bytes given inline fail the same way (no file to name).
    with pytest.raises(DKIMKeyError) as info:
        load_private_key(content, algorithm=algorithm)
    assert message in info.value.message and info.value.file is None


def _make(kind: str) -> bytes:
    if kind == "ed25519":
        return _pem(ed25519.Ed25519PrivateKey.generate())
    if kind == "ec":
        return _pem(ec.generate_private_key(ec.SECP256R1()))
    if kind == "public":
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if kind == "encrypted":
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    bits = int(kind.split("-")[1])
    if bits < 1024:
        # cryptography refuses to generate < 1024 bits; build one from primes.
        return _rsa_from_primes(bits)
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def _rsa_from_primes(bits: int) -> bytes:
    # The two largest primes below 2**256: a 512-bit modulus.
    p, q = 2**256 - 189, 2**256 - 357
    e = 65537
    n = p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    assert key.key_size == bits
    return _pem(key)


def test_rsa_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.pem"
    path.write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=4104)))
    with pytest.raises(DKIMKeyError, match="RSA key of 4104 bits: need 1024 to 4096") as info:
        load_private_key(path)
    assert info.value.file == str(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "key.pem"
    with pytest.raises(DKIMKeyError, match="not found") as info:
        load_private_key(missing)
    assert info.value.file == str(missing)
    with pytest.raises(DKIMKeyError) as info:
        load_private_key(str(tmp_path))
    assert info.value.file == str(tmp_path)
    with pytest.raises(DKIMKeyError) as info:
        Signer(domain="example.com", selector="s", key=missing)
    assert info.value.file == str(missing)


def test_unknown_algorithm() -> None:
    with pytest.raises(DKIMError) as info:
        load_private_key(generate_private_key(), algorithm="rsa-sha1")
    assert info.value.field == "algorithm"


def test_pkcs1_and_str_pem_accepted(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert isinstance(load_private_key(pkcs1), rsa.RSAPrivateKey)
    assert isinstance(load_private_key(pkcs1.decode()), rsa.RSAPrivateKey)


def test_cache_parses_once_and_notices_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(generate_private_key("rsa-sha256", 1024))
    a = Signer(domain="example.com", selector="s", key=path)
    b = Signer(domain="example.com", selector="s", key=str(path))
    assert a._key is b._key  # parsed once
    other = Signer(domain="example.org", selector="s", key=path)
    assert other._key is not a._key  # cached per (domain, selector, ...)
    # Replace the file: the next Signer sees the new key.
    path.write_bytes(generate_private_key("rsa-sha256", 2048))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    c = Signer(domain="example.com", selector="s", key=path)
    assert c._key is not a._key and c._key.key_size == 2048  # type: ignore[union-attr]
    pem = generate_private_key("ed25519-sha256")
    assert load_private_key(pem, algorithm="ed25519-sha256") is load_private_key(
        pem, algorithm="ed25519-sha256"
    )


# -- mailsflux.dkim.keygen -----------------------------------------------------------


@pytest.mark.parametrize("bits", [1024, 2048, 4096])
def test_generate_rsa(bits: int) -> None:
    pem = generate_private_key("rsa-sha256", bits)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    key = load_private_key(pem)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits
    record = dns_txt_record(pem)
    assert record.startswith("v=DKIM1; k=rsa; p=")
    spki = base64.b64decode(record.split("p=", 1)[1])
    assert spki == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_generate_ed25519() -> None:
    pem = generate_private_key("ed25519-sha256")
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = load_private_key(pem, algorithm="ed25519-sha256")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    record = dns_txt_record(pem, algorithm="ed25519-sha256")
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(record.split("p=", 1)[1])
    assert len(raw) == 32
    assert raw == key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


@pytest.mark.parametrize("bits", [512, 1000, 8192])
def test_generate_rejects_sizes(bits: int) -> None:
    with pytest.raises(DKIMError, match="need 1024 to 4096"):
        generate_private_key("rsa-sha256", bits)


def test_dns_txt_record_checks_algorithm() -> None:
    with pytest.raises(DKIMKeyError, match="key is Ed25519 but algorithm is rsa-sha256"):
        dns_txt_record(generate_private_key("ed25519-sha256"))


def _zone_record(text: str) -> str:
    return "".join(re.findall(r'"([^"]*)"', text))


@pytest.mark.parametrize(
    ("algorithm", "bits"), [("rsa-sha256", 1024), ("rsa-sha256", 2048), ("ed25519-sha256", 0)]
)
def test_write_key_pair(tmp_path: Path, algorithm: str, bits: int) -> None:
    kw = {"bits": bits} if bits else {}
    pem_path, txt_path = write_key_pair(
        tmp_path / "dkim", domain="example.com", selector="mail", algorithm=algorithm, **kw
    )
    assert pem_path == tmp_path / "dkim" / "mail.example.com.pem"
    assert txt_path == tmp_path / "dkim" / "mail.example.com.txt"
    assert stat.S_IMODE(pem_path.stat().st_mode) == 0o600
    text = txt_path.read_text()
    assert text.startswith('mail._domainkey.example.com. IN TXT ( "v=DKIM1; k=')
    assert text.rstrip("\n").endswith('" )')
    strings = re.findall(r'"([^"]*)"', text)
    assert all(len(s) <= 255 for s in strings)
    assert strings[1].startswith("p=")
    record = _zone_record(text)
    assert record == dns_txt_record(pem_path.read_bytes(), algorithm=algorithm)
    # The pair works end to end with dkimpy.
    signer = Signer(domain="example.com", selector="mail", key=pem_path, algorithm=algorithm)
    signed = signer.sign(MESSAGE)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record.encode() if name == b"mail._domainkey.example.com." else b""

    assert dkim.verify(signed, dnsfunc=dnsfunc)
    # Existing files are kept unless overwrite=True.
    with pytest.raises(DKIMKeyError) as info:
        write_key_pair(tmp_path / "dkim", domain="example.com", selector="mail", **kw)
    assert info.value.file == str(pem_path)
    old = pem_path.read_bytes()
    write_key_pair(
        tmp_path / "dkim",
        domain="example.com",
        selector="mail",
        algorithm=algorithm,
        overwrite=True,
        **kw,
    )
    assert pem_path.read_bytes() != old
    assert stat.S_IMODE(pem_path.stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "dkim").iterdir() if p.name.startswith(".")]
