"""Published test vectors reproduce exactly.

- RFC 6376 section 3.4.5 canonicalization examples (and the empty-body hashes
  of sections 3.4.3/3.4.4).
- RFC 8463 Appendix A: the Ed25519 and RSA signatures of the example message,
  same keys, tags, t= and h= list: exact bh= and b=.

Vectors live in tests/data/dkim/ (copied byte for byte, see its README.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mailsflux.dkim import Signer, sign_all
from mailsflux.dkim import _canon as _dkim
from mailsflux.dkim.keygen import dns_txt_record

DATA = Path(__file__).parent / "data" / "dkim"
RFC6376 = DATA / "rfc6376"
RFC8463 = DATA / "rfc8463"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


CANON = _json(RFC6376 / "canonicalization-3.4.5.json")
V8463 = _json(RFC8463 / "vectors.json")


def test_vector_files_keep_crlf() -> None:
    raw = (RFC6376 / "input.eml").read_bytes()
    assert raw == CANON["input"].encode()
    assert b"\r\n" in raw
    for name in ("signed.eml", "unsigned.eml"):
        data = (RFC8463 / name).read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n") > 0
    assert (RFC8463 / "unsigned.eml").read_bytes() == V8463["unsigned_message"].encode()


# -- RFC 6376 section 3.4.5 -------------------------------------------------


@pytest.mark.parametrize("example", CANON["examples"], ids=lambda e: e["id"])
def test_rfc6376_345_examples(example: dict[str, str]) -> None:
    msg = _dkim.Message((RFC6376 / "input.eml").read_bytes())
    header_relaxed = example["header_canon"] == "relaxed"
    body_relaxed = example["body_canon"] == "relaxed"
    # The two fields in message order (the h= list "a:b" selects them so).
    got_headers = msg.header_hash_input((b"a", b"b"), header_relaxed)
    assert got_headers == example["expected_headers"].encode()
    assert msg.canonical_body(body_relaxed) == example["expected_body"].encode()
    # The per-example files say the same as the JSON.
    stem = f"{example['id']}.{example['header_canon']}-{example['body_canon']}"
    assert (RFC6376 / f"{stem}.headers").read_bytes() == got_headers
    assert (RFC6376 / f"{stem}.body").read_bytes() == msg.canonical_body(body_relaxed)
    # The policy object parses the tag value the same way.
    policy = _dkim.Policy(f"{example['header_canon']}/{example['body_canon']}")
    assert (policy.header_relaxed, policy.body_relaxed) == (header_relaxed, body_relaxed)


@pytest.mark.parametrize("mode", ["simple", "relaxed"])
def test_empty_body_hashes(mode: str) -> None:
    expected = CANON["empty_body_hashes"][mode]
    relaxed = mode == "relaxed"
    for body in (b"", b"\r\n", b"\r\n\r\n\r\n"):
        msg = _dkim.Message(b"From: a@b.example\r\n\r\n" + body)
        assert msg.canonical_body(relaxed) == expected["canonical_body"].encode()
        assert base64.b64encode(msg.body_hash(relaxed)).decode() == expected["sha256_b64"]
    # No empty line at all: no body.
    no_body = _dkim.Message(b"From: a@b.example\r\n")
    assert base64.b64encode(no_body.body_hash(relaxed)).decode() == expected["sha256_b64"]


def test_policy_parsing() -> None:
    assert _dkim.Policy("relaxed").value == "relaxed/simple"  # RFC 6376 3.5: body default
    assert _dkim.Policy("Simple/Relaxed").value == "simple/relaxed"
    from mailsflux.errors import DKIMError

    for bad in ("", "relaxed/", "loose/simple", "relaxed/simple/simple"):
        with pytest.raises(DKIMError) as info:
            _dkim.Policy(bad)
        assert info.value.field == "canonicalization"


# -- RFC 8463 Appendix A ------------------------------------------------------


def _ed25519_pem() -> bytes:
    seed = base64.b64decode((RFC8463 / "ed25519.secret.b64").read_text().strip())
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _rsa_pem() -> bytes:
    return (RFC8463 / "rsa.private.pem").read_bytes()


class _RFC8463Layout(Signer):
    """The appendix writes q=dns/txt and separates h= names with " : "."""

    _h_separator: ClassVar[str] = " : "
    _query_tag: ClassVar[bool] = True


def _vector_signer(algorithm: str) -> Signer:
    spec = V8463["ed25519" if algorithm == "ed25519-sha256" else "rsa"]
    return _RFC8463Layout(
        domain=V8463["domain"],
        selector=spec["selector"],
        key=_ed25519_pem() if algorithm == "ed25519-sha256" else _rsa_pem(),
        algorithm=algorithm,
        canonicalization=V8463["canonicalization"],
        headers=V8463["signed_header_list"],
        identity=V8463["identity"],
    )


def _tags(field: bytes) -> dict[str, str]:
    value = field.split(b":", 1)[1].decode()
    value = "".join(value.split())  # drop all FWS
    return dict(t.split("=", 1) for t in value.split(";") if t)


def _signature_tags(message: bytes) -> list[dict[str, str]]:
    header = message.split(b"\r\n\r\n", 1)[0]
    fields = re.split(rb"\r\n(?=[^ \t])", header)
    return [_tags(f) for f in fields if f.lower().startswith(b"dkim-signature:")]


def _expected(algorithm: str) -> dict[str, str]:
    return next(e for e in V8463["expected_signatures"] if e["algorithm"] == algorithm)


def test_rfc8463_keys_match_published_records() -> None:
    assert (
        dns_txt_record(_ed25519_pem(), algorithm="ed25519-sha256") == (V8463["ed25519"]["dns_txt"])
    )
    assert dns_txt_record(_rsa_pem(), algorithm="rsa-sha256") == V8463["rsa"]["dns_txt"]


def test_rfc8463_body_hash() -> None:
    msg = _dkim.Message((RFC8463 / "unsigned.eml").read_bytes())
    assert base64.b64encode(msg.body_hash(True)).decode() == V8463["body_hash_sha256_relaxed_b64"]


@pytest.mark.parametrize("algorithm", ["ed25519-sha256", "rsa-sha256"])
def test_rfc8463_signature_reproduces_exactly(algorithm: str) -> None:
    unsigned = (RFC8463 / "unsigned.eml").read_bytes()
    field = _vector_signer(algorithm).signature(unsigned, timestamp=V8463["timestamp_t"])
    assert field.startswith(b"DKIM-Signature: ") and field.endswith(b"\r\n")
    got = _tags(field)
    want = _tags(_expected(algorithm)["header_field"].encode())
    assert got["bh"] == V8463["body_hash_sha256_relaxed_b64"]
    assert got["b"] == _expected(algorithm)["b"]
    assert got == want  # every tag, same values
    # What the signature covers (the field up to "b=", RFC 6376 section 3.7) is
    # the same after relaxed canonicalization; only the folding points differ.
    assert _signed_part(field) == _signed_part(_expected(algorithm)["header_field"].encode())


def _signed_part(field: bytes) -> bytes:
    field = field.removesuffix(b"\r\n")
    return _dkim.canonicalize_header(field[: field.rindex(b"b=") + 2], True)


def test_rfc8463_signed_message_reproduces_exactly() -> None:
    unsigned = (RFC8463 / "unsigned.eml").read_bytes()
    signed = sign_all(
        unsigned,
        [_vector_signer("ed25519-sha256"), _vector_signer("rsa-sha256")],
        timestamp=V8463["timestamp_t"],
    )
    expected = (RFC8463 / "signed.eml").read_bytes()
    # Same message, same signatures in the same order; only folding may differ.
    assert signed.endswith(unsigned)
    assert expected.endswith(unsigned)
    assert _signature_tags(signed) == _signature_tags(expected)
    assert _dkim_verify_all(signed) == [True, True]


def _dkim_verify_all(message: bytes) -> list[bool]:
    records = {
        f"{V8463['ed25519']['dns_name']}.".encode(): V8463["ed25519"]["dns_txt"].encode(),
        f"{V8463['rsa']['dns_name']}.".encode(): V8463["rsa"]["dns_txt"].encode(),
    }

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    d = dkim.DKIM(message, minkey=1024)
    count = message.lower().count(b"\ndkim-signature:") + message.lower().startswith(
        b"dkim-signature:"
    )
    return [bool(d.verify(idx=i, dnsfunc=dnsfunc)) for i in range(count)]


def test_dkimpy_accepts_the_published_message() -> None:
    assert _dkim_verify_all((RFC8463 / "signed.eml").read_bytes()) == [True, True]


def test_ed25519_signs_sha256_of_headers() -> None:
    """RFC 8463 section 3: the Ed25519 input is SHA-256(canonical headers), not the headers."""
    unsigned = (RFC8463 / "unsigned.eml").read_bytes()
    field = _vector_signer("ed25519-sha256").signature(unsigned, timestamp=V8463["timestamp_t"])
    msg = _dkim.Message(unsigned)
    without_b = field[: field.rindex(b"b=") + 2]
    data = msg.header_hash_input(
        tuple(n.encode() for n in V8463["signed_header_list"]), True, without_b
    )
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        base64.b64decode(V8463["ed25519"]["public_key_b64"])
    )
    public.verify(base64.b64decode(_tags(field)["b"]), hashlib.sha256(data).digest())
