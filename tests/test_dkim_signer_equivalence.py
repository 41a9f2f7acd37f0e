"""The compiled signing path (``SigningPlan``, ``Message.signing_input``,
``dkim_field``) against a pure-Python model of the signer as it was before it.

``RefSigner`` below is the former ``Signer._signature`` (counts, h= choice,
t=/x=, bh=, the unsigned field, header hash input, b= folding) written over
pure-Python parsing and the RFC-text canonicalizers of
``tests/test_dkim_fuzz.py``, so nothing in it runs the compiled code under
test.  Ed25519 and RSA PKCS#1 v1.5 signatures are deterministic, so both
paths must produce the same bytes for every message, or the same error.
A sample of outputs is also verified independently by dkimpy.
"""

from __future__ import annotations

import hashlib
import re
from binascii import b2a_base64
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.dkim import MultiSigner, Signer, _canon, sign_all
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key
from mailsflux.dkim.signer import _OVERSIGNED_LOWER
from mailsflux.errors import DKIMError
from tests.test_dkim_fuzz import (
    ref_relaxed_body,
    ref_relaxed_header,
    ref_simple_body,
)
from tests.test_dkim_sign import verify_all

DOMAIN = "example.com"
WSP = b" \t"


# -- the reference ------------------------------------------------------------


def ref_normalize(data: bytes) -> bytes:
    """Lone CR / lone LF -> CRLF; a non-empty message ends in CRLF."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def ref_parse(data: bytes) -> tuple[list[tuple[bytes | None, bytes]], bytes]:
    """([(lowercase name or None, raw field without final CRLF)], body)."""
    fields: list[tuple[bytes | None, bytes]] = []
    i = 0
    body = b""
    while i < len(data):
        if data.startswith(b"\r\n", i):
            body = data[i + 2 :]
            break
        j = data.find(b"\r\n", i)
        line = data[i:] if j < 0 else data[i:j]
        i = len(data) if j < 0 else j + 2
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + b"\r\n" + line)
        else:
            name_part, colon, _ = line.partition(b":")
            fields.append((name_part.rstrip(WSP).lower() if colon else None, line))
    return fields, body


def ref_fold(value: bytes, first: int, width: int) -> bytes:
    pieces = [value[:first]]
    pieces += [value[k : k + width] for k in range(first, len(value), width)]
    return b"\r\n ".join(pieces)


class RefSigner:
    """The former ``Signer._signature``, over pure-Python pieces."""

    def __init__(self, signer: Signer) -> None:
        self.s = signer

    def signature(self, message: bytes, timestamp: int) -> bytes:
        s = self.s
        data = ref_normalize(message)
        fields, body = ref_parse(data)
        lnames_all: tuple[bytes, ...] = s._lnames
        if s._default:
            counts = tuple(sum(1 for n, _ in fields if n == ln) for ln in lnames_all)
            if not counts[lnames_all.index(b"from")]:
                raise DKIMError("no From", field="From")
            names: list[str] = []
            for name, count in zip(s.headers, counts, strict=True):
                names += [name] * (count + 1 if name.lower() in _OVERSIGNED_LOWER else count)
        else:
            if not any(n == b"from" for n, _ in fields):
                raise DKIMError("no From", field="From")
            names = list(s.headers)
        h = s._fold_h(names)
        lnames = [n.lower().encode("ascii") for n in names]
        t = timestamp
        tx = b"%d; x=%d" % (t, t + s.expire_after) if s.expire_after else b"%d" % t
        hrel, brel = s._header_relaxed, s._body_relaxed
        canon_body = ref_relaxed_body(body) if brel else ref_simple_body(body)
        bh = b2a_base64(hashlib.sha256(canon_body).digest(), newline=False)
        unsigned = s._head + tx + b";\r\n h=" + h + b";\r\n bh=" + bh + b";\r\n b="
        used: set[int] = set()
        hashed = b""
        for want in lnames:
            for k in range(len(fields) - 1, -1, -1):
                if k not in used and fields[k][0] == want:
                    used.add(k)
                    raw = fields[k][1]
                    hashed += (ref_relaxed_header(raw) if hrel else raw) + b"\r\n"
                    break
        hashed += ref_relaxed_header(unsigned) if hrel else unsigned
        if isinstance(s._key, ed25519.Ed25519PrivateKey):
            sig = s._key.sign(hashlib.sha256(hashed).digest())
        else:
            sig = s._key.sign(hashed, padding.PKCS1v15(), hashes.SHA256())
        return unsigned + ref_fold(b2a_base64(sig, newline=False), 72, 76) + b"\r\n"

    def sign(self, message: bytes, timestamp: int) -> bytes:
        return self.signature(message, timestamp) + ref_normalize(message)


# -- messages -------------------------------------------------------------------

NAMES = [b"From", b"from", b"FROM ", b"To", b"to\t", b"Subject", b"Cc", b"Reply-To",
         b"Content-Type", b"List-Unsubscribe", b"Feedback-ID", b"X-Mailer", b"Fro m",
         b"Message-ID", b"Date", b"MIME-Version", b" From", b""]  # fmt: skip
PIECES = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n ", b"\r\n\t", b"\x00", b"a", b"Z", b":",
          b"\x80", b"\xff", b"\x7f", b"  ", b"x y", b"\xc3\xa9", b";", b"=?utf-8?b?WnA=?=",
          b"abcdefghijklmnopqrstuvwxyz0123456789", b"<https://x.example/u/k1.AbCdEf>"]  # fmt: skip
text = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)
header_line = st.one_of(
    st.tuples(st.sampled_from(NAMES), st.sampled_from([b":", b" :", b""]), text).map(b"".join),
    st.binary(max_size=40),
)
messages = st.one_of(
    st.builds(
        lambda hs, sep, body: b"\r\n".join(hs) + sep + body,
        st.lists(header_line, max_size=12),
        st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b"", b"\r\r"]),
        st.one_of(text, st.binary(max_size=300)),
    ),
    st.binary(max_size=300),
)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return {
        "ed25519": generate_private_key("ed25519-sha256"),
        "rsa": generate_private_key("rsa-sha256", 1024),
    }


def _signers(keys: dict[str, bytes]) -> list[Signer]:
    out = []
    for kind, key in keys.items():
        alg = "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"
        for canon in ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"):
            out.append(Signer(domain=DOMAIN, selector=kind, key=key, algorithm=alg,
                              canonicalization=canon))  # fmt: skip
        out.append(Signer(domain=DOMAIN, selector=kind, key=key, algorithm=alg,
                          headers=["From", "to", "Subject", "From", "X-Missing"],
                          expire_after=86400, identity="a@" + DOMAIN))  # fmt: skip
    return out


def _same(signer: Signer, message: bytes, timestamp: int) -> None:
    ref = RefSigner(signer)
    try:
        want = ref.sign(message, timestamp)
    except DKIMError as e:
        assert e.field == "From"
        with pytest.raises(DKIMError) as got:
            signer.sign(message, timestamp=timestamp)
        assert got.value.field == "From"
        assert "no From header field" in str(got.value)
        with pytest.raises(DKIMError):
            signer.signature(message, timestamp=timestamp)
        return
    assert signer.sign(message, timestamp=timestamp) == want
    assert signer.signature(message, timestamp=timestamp) == ref.signature(message, timestamp)


@FUZZ
@given(data=messages, timestamp=st.integers(0, 10**12))
def test_signer_matches_reference(keys: dict[str, bytes], data: bytes, timestamp: int) -> None:
    for signer in _signers(keys):
        _same(signer, data, timestamp)
        # Again with a fresh From on top, so most cases sign rather than fail.
        _same(signer, b"From: a@example.com\r\n" + data, timestamp)


@FUZZ
@given(body=st.lists(st.sampled_from(PIECES), max_size=200).map(b"".join))
def test_long_runs_and_folds(keys: dict[str, bytes], body: bytes) -> None:
    """Long fields and bodies with long runs of non-WSP bytes (the sixteen-byte block copies)."""
    long_value = body.replace(b"\r", b"").replace(b"\n", b"") or b"x"
    message = (
        b"From: A <a@example.com>\r\nSubject: " + long_value + b"\r\n"
        b"List-Unsubscribe: <" + long_value + b">,\r\n <mailto:u@example.com>\r\n"
        b"To:   " + long_value[:100] + b"   \r\n\r\n" + body
    )
    for signer in _signers(keys):
        _same(signer, message, 1_700_000_000)


def test_t_is_reformatted_when_the_time_changes(keys: dict[str, bytes]) -> None:
    """The per-second cache of t=/x= never serves a stale time."""
    msg = b"From: a@example.com\r\nTo: b@example.net\r\n\r\nhi\r\n"
    for signer in _signers(keys):
        ref = RefSigner(signer)
        for t in (1, 1, 2, 1, 10**10, 0, 2):
            assert signer.signature(msg, timestamp=t) == ref.signature(msg, t)


def test_multi_signer_matches_reference(keys: dict[str, bytes]) -> None:
    msg = b"From: a@example.com\r\nSubject: x\r\n\r\nbody  \r\n\r\n"
    signers = _signers(keys)
    want = b"".join(RefSigner(s).signature(msg, 5) for s in signers) + msg
    assert sign_all(msg, signers, timestamp=5) == want
    assert MultiSigner(signers).sign(msg, timestamp=5) == want


def test_dkim_field_matches_fold_value() -> None:
    for n in range(0, 700, 7):
        sig = bytes(range(256))[: n % 256] * (n // 256 + 1)
        b64 = b2a_base64(sig, newline=False)
        for first, width in ((72, 76), (1, 1), (3, 5), (500, 76)):
            assert _canon.dkim_field(b"U", sig, first, width, b"T") == (
                b"U" + _canon.fold_value(b64, first, width) + b"\r\nT"
            )
    with pytest.raises(ValueError):
        _canon.dkim_field(b"", b"", 0, 1, b"")


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_dkimpy_verifies(keys: dict[str, bytes], kind: str) -> None:
    alg = "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"
    record = {kind: dns_txt_record(keys[kind], algorithm=alg)}
    messages_: Sequence[bytes] = [
        b"From: A <a@example.com>\r\nTo:  b@example.net \r\nSubject: hi\r\n\tthere\r\n\r\n"
        b"Hello,  world \r\n\r\n\r\n",
        b"From: a@example.com\nSubject: =?utf-8?b?WnA=?=\n\nbare LF body\n",
        b"From: a@example.com\r\n\r\n",
        b"From: a@example.com\r\nList-Unsubscribe: <https://x.example/u/"
        + b"k" * 300
        + b">\r\n\r\n"
        + b"abcdefghijklmnop " * 200
        + b"\r\n",
    ]
    for canon in ("relaxed/relaxed", "simple/simple"):
        signer = Signer(domain=DOMAIN, selector=kind, key=keys[kind], algorithm=alg,
                        canonicalization=canon)  # fmt: skip
        for m in messages_:
            assert verify_all(signer.sign(m), record) == [True]


@settings(max_examples=1000, deadline=None)
@given(
    data=st.one_of(
        st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join), st.binary(max_size=64)
    )
)
def test_normal_check_matches_reference(data: bytes) -> None:
    """``normalize_crlf`` returns its input itself exactly when it is already normal."""
    assert (_canon.normalize_crlf(data) is data) == (ref_normalize(data) == data)
    assert _canon.normalize_crlf(data) == ref_normalize(data)
