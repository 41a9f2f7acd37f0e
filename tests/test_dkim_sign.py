"""Signatures made by mailsflux verify with dkimpy (a real, independent verifier).

The DNS lookup is the only thing replaced: dkimpy's ``dnsfunc`` hook returns
the TXT record that :func:`mailsflux.dkim.keygen.dns_txt_record` publishes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import dkim
import pytest

from mailsflux.dkim import DEFAULT_HEADERS, MultiSigner, Signer, sign, sign_all
from mailsflux.dkim import _canon as _dkim
from mailsflux.dkim.keygen import dns_txt_record, generate_private_key
from mailsflux.dkim.signer import signatures
from mailsflux.errors import DKIMError

DOMAIN = "example.com"

BASIC = (
    b"From: Shop <news@example.com>\r\n"
    b"To: Jane <jane@example.net>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Jane,\r\n\r\nyour order shipped.\r\n"
)

FOLDED = (
    b"From: =?utf-8?q?Caf=C3=A9?=\r\n <news@example.com>\r\n"
    b"To: a@example.net,\r\n\tb@example.net,   \r\n   c@example.net\r\n"
    b"Subject:   a  subject\t with   odd   spacing   \r\n"
    b"X-Long: " + b"x" * 900 + b"\r\n"
    b"References: <a@x>\r\n <b@x>\r\n\t<c@x>\r\n"
    b"\r\n"
    b"line with trailing space   \r\n"
    b"\ttabbed  \t line\r\n" + b"long " * 400 + b"\r\n\r\n\r\n"
)

BARE_LF = b"From: a@example.com\nTo: b@example.net\nSubject: bare\n  LF folded\n\nbody\nmore  \n\n"
EIGHT_BIT = (
    (
        "From: Zoë <zoe@example.com>\r\nTo: b@example.net\r\nSubject: 8bit\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße, ünïcödé \u2013 ☃\r\n\x00nul and \x7f del\r\n"
    ).encode()
    + bytes(range(128, 256))
    + b"\r\n"
)
NO_TRAILING_CRLF = b"From: a@example.com\r\nTo: b@example.net\r\n\r\nno final line end  "
NO_BODY = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: none"
MESSAGES = {
    "basic": BASIC,
    "folded": FOLDED,
    "bare-lf": BARE_LF,
    "8bit": EIGHT_BIT,
    "no-trailing-crlf": NO_TRAILING_CRLF,
    "no-body": NO_BODY,
}
CANONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"]


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return {
        "rsa-1024": generate_private_key("rsa-sha256", 1024),
        "rsa-2048": generate_private_key("rsa-sha256", 2048),
        "rsa-4096": generate_private_key("rsa-sha256", 4096),
        "ed25519": generate_private_key("ed25519-sha256"),
    }


def _alg(kind: str) -> str:
    return "ed25519-sha256" if kind == "ed25519" else "rsa-sha256"


def _dns(records: dict[str, str]) -> Callable[..., bytes]:
    table = {f"{sel}._domainkey.{DOMAIN}.".encode(): rec.encode() for sel, rec in records.items()}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return table.get(name, b"")

    return dnsfunc


def verify_all(message: bytes, records: dict[str, str]) -> list[bool]:
    """dkimpy's verdict on every DKIM-Signature in ``message``, top first."""
    header = message.split(b"\r\n\r\n", 1)[0]
    n = len(re.findall(rb"(?im)^dkim-signature:", header))
    assert n, "message carries no DKIM-Signature"
    try:
        d = dkim.DKIM(message, minkey=1024)
    except dkim.DKIMException:  # unparseable: dkim.verify() says False
        return [False] * n
    return [_verify_one(d, i, records) for i in range(n)]


def _verify_one(d: dkim.DKIM, idx: int, records: dict[str, str]) -> bool:
    try:
        return bool(d.verify(idx=idx, dnsfunc=_dns(records)))
    except dkim.DKIMException:  # what dkim.verify() turns into False
        return False


def _signer(keys: dict[str, bytes], kind: str, **kw: object) -> Signer:
    return Signer(domain=DOMAIN, selector=kind, key=keys[kind], algorithm=_alg(kind), **kw)  # type: ignore[arg-type]


def _records(keys: dict[str, bytes], *kinds: str) -> dict[str, str]:
    return {k: dns_txt_record(keys[k], algorithm=_alg(k)) for k in kinds}


@pytest.mark.parametrize(
    ("kind", "canon"),
    [(k, c) for k in ("rsa-1024", "rsa-2048", "ed25519") for c in CANONS]
    # dkimpy's pure-Python RSA is slow at 4096 bits: the two pure modes only.
    + [("rsa-4096", "relaxed/relaxed"), ("rsa-4096", "simple/simple")],
)
def test_dkimpy_verifies(keys: dict[str, bytes], kind: str, canon: str) -> None:
    signer = _signer(keys, kind, canonicalization=canon)
    for name, message in MESSAGES.items():
        signed = signer.sign(message)
        assert verify_all(signed, _records(keys, kind)) == [True], name


@pytest.mark.parametrize("name", list(MESSAGES))
def test_tampering_is_detected(keys: dict[str, bytes], name: str) -> None:
    signed = _signer(keys, "rsa-2048").sign(MESSAGES[name])
    records = _records(keys, "rsa-2048")
    assert verify_all(signed, records) == [True]
    assert verify_all(signed.replace(b"example.net", b"example.org", 1), records) == [False]
    assert verify_all(signed + b"extra line\r\n", records) == [False]


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_dual_signing(keys: dict[str, bytes], canon: str) -> None:
    rsa = _signer(keys, "rsa-2048", canonicalization=canon)
    ed = _signer(keys, "ed25519", canonicalization="relaxed/relaxed")
    records = _records(keys, "rsa-2048", "ed25519")
    for message in MESSAGES.values():
        both = sign_all(message, [ed, rsa], timestamp=1_700_000_000)
        assert both.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")
        assert verify_all(both, records) == [True, True]
        assert MultiSigner([ed, rsa]).sign(message, timestamp=1_700_000_000) == both
        assert MultiSigner([rsa, ed]).signature(message, timestamp=1_700_000_000) == (
            rsa.signature(message, timestamp=1_700_000_000)
            + ed.signature(message, timestamp=1_700_000_000)
        )


def test_sign_function_and_expiry(keys: dict[str, bytes]) -> None:
    signed = sign(
        BASIC,
        domain=DOMAIN,
        selector="ed25519",
        key=keys["ed25519"],
        algorithm="ed25519-sha256",
        timestamp=1_700_000_000,
        expire_after=86_400,
    )
    tags = _tags(signed)
    assert tags["t"] == "1700000000" and tags["x"] == "1700086400"
    # dkimpy checks x= against the clock: use a signature valid now.
    fresh = _signer(keys, "ed25519", expire_after=3600).sign(BASIC)
    assert verify_all(fresh, _records(keys, "ed25519")) == [True]
    assert verify_all(signed, _records(keys, "ed25519")) == [False]  # expired long ago


def test_output_shape(keys: dict[str, bytes]) -> None:
    signer = _signer(keys, "rsa-4096")
    field = signer.signature(FOLDED, timestamp=1_700_000_000)
    assert field.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert field.endswith(b"\r\n") and not field.endswith(b"\r\n\r\n")
    lines = field[:-2].split(b"\r\n")
    assert all(len(line) <= 78 for line in lines), lines
    assert all(line.startswith(b" ") for line in lines[1:])
    assert signer.sign(FOLDED, timestamp=1_700_000_000) == field + FOLDED
    # Bare LF is normalized in what sign() returns.
    out = signer.sign(BARE_LF)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert out.endswith(BARE_LF.replace(b"\n", b"\r\n"))
    # Deterministic for RSA: same input, same field.
    assert signer.signature(FOLDED, timestamp=1) == signer.signature(FOLDED, timestamp=1)
    assert (signer.domain, signer.selector, signer.algorithm) == (DOMAIN, "rsa-4096", "rsa-sha256")


def _tags(signed: bytes) -> dict[str, str]:
    field = re.split(rb"\r\n(?=[^ \t])", signed, maxsplit=1)[0]
    value = "".join(field.split(b":", 1)[1].decode().split())
    return dict(t.split("=", 1) for t in value.split(";") if t)


def test_default_header_list(keys: dict[str, bytes]) -> None:
    message = (
        b"Received: by relay\r\n"
        b"From: a@example.com\r\nTo: b@example.net\r\nTo: c@example.net\r\n"
        b"Subject: s\r\nX-Mailer: m\r\nList-Unsubscribe: <mailto:u@example.com>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFeedback-ID: 1:2:3\r\n"
        b"\r\nbody\r\n"
    )
    h = _tags(_signer(keys, "ed25519").sign(message))["h"].split(":")
    # Oversigned names once more than present (absent ones once), the rest as
    # often as present, in list order.
    assert h == [
        "From",
        "From",
        "Sender",
        "Reply-To",
        "To",
        "To",
        "To",
        "Cc",
        "Subject",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Unsubscribe",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Unsubscribe-Post",
        "Feedback-ID",
    ]
    assert set(n.lower() for n in h) <= {n.lower() for n in DEFAULT_HEADERS}
    # Oversigned From: adding a From breaks the signature.
    signed = _signer(keys, "ed25519").sign(message)
    records = _records(keys, "ed25519")
    assert verify_all(signed, records) == [True]
    sig, rest = signed.split(b"\r\nReceived:", 1)
    forged = sig + b"\r\nFrom: evil@example.org\r\nReceived:" + rest
    assert verify_all(forged, records) == [False]
    # A header not in the list (X-Mailer, Received) may change.
    assert verify_all(signed.replace(b"X-Mailer: m", b"X-Mailer: other"), records) == [True]


def test_explicit_header_list_is_used_verbatim(keys: dict[str, bytes]) -> None:
    signer = _signer(keys, "rsa-1024", headers=["from", "subject", "x-absent", "from"])
    signed = signer.sign(BASIC)
    assert _tags(signed)["h"] == "from:subject:x-absent:from"
    records = _records(keys, "rsa-1024")
    assert verify_all(signed, records) == [True]
    # The absent field is signed as absent: adding it breaks the signature.
    head, body = signed.split(b"\r\n\r\n", 1)
    assert verify_all(head + b"\r\nX-Absent: 1\r\n\r\n" + body, records) == [False]
    # To is not covered this time.
    assert verify_all(signed.replace(b"To: Jane", b"To: John"), records) == [True]


def test_header_case_and_duplicates_from_bottom(keys: dict[str, bytes]) -> None:
    message = b"FROM: a@example.com\r\nsubject: first\r\nSUBJECT : second\r\n\r\nbody\r\n"
    msg = _dkim.Message(message)
    assert msg.counts((b"from", b"subject", b"to")) == (1, 2, 0)
    # h= picks instances bottom-up (RFC 6376 section 5.4.2).
    assert msg.header_hash_input((b"subject", b"subject", b"subject"), True) == (
        b"subject:second\r\nsubject:first\r\n"
    )
    assert msg.header_hash_input((b"subject",), False) == b"SUBJECT : second\r\n"


def test_message_without_from(keys: dict[str, bytes]) -> None:
    for signer in (_signer(keys, "ed25519"), _signer(keys, "ed25519", headers=["From", "To"])):
        for message in (b"To: b@example.net\r\n\r\nbody\r\n", b"", b"\r\nbody only\r\n"):
            with pytest.raises(DKIMError) as info:
                signer.sign(message)
            assert info.value.field == "From"
            assert "From" in str(info.value)
    # "From " (mbox) or "Fromage:" are not From fields.
    with pytest.raises(DKIMError):
        _signer(keys, "ed25519").sign(b"Fromage: x\r\nFrom x@y\r\n\r\n")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"algorithm": "rsa-sha1"}, "algorithm"),
        ({"canonicalization": "nowsp/simple"}, "canonicalization"),
        ({"domain": "bad domain"}, "domain"),
        ({"domain": "semi;colon.com"}, "domain"),
        ({"selector": "a b"}, "selector"),
        ({"selector": ""}, "selector"),
        ({"headers": ["To", "Subject"]}, "headers"),
        ({"headers": ["From", "Bad:Name"]}, "headers"),
        ({"headers": ["From", "semi;colon"]}, "headers"),
        ({"expire_after": 0}, "x"),
        ({"expire_after": -5}, "x"),
        ({"identity": "someone@other.example"}, "i"),
    ],
)
def test_bad_arguments(keys: dict[str, bytes], kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"domain": DOMAIN, "selector": "s", "key": keys["rsa-1024"]}
    args.update(kwargs)
    with pytest.raises(DKIMError) as info:
        Signer(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_identity_and_idna(keys: dict[str, bytes]) -> None:
    signer = Signer(
        domain="bücher.example",
        selector="ed25519",
        key=keys["ed25519"],
        algorithm="ed25519-sha256",
        identity="news@mail.xn--bcher-kva.example",
    )
    assert signer.domain == "xn--bcher-kva.example"
    tags = _tags(signer.sign(BASIC))
    assert tags["d"] == "xn--bcher-kva.example" and tags["i"] == "news@mail.xn--bcher-kva.example"


def test_large_body_releases_gil_path(keys: dict[str, bytes]) -> None:
    body = (b"x \t y  \r\n" * 20_000) + b"\r\n" * 5
    message = b"From: a@example.com\r\n\r\n" + body
    signed = _signer(keys, "ed25519").sign(message)
    assert verify_all(signed, _records(keys, "ed25519")) == [True]


@pytest.mark.parametrize("kind", ["ed25519", "rsa-2048"])
def test_sign_many_is_sign_of_each(keys: dict[str, bytes], kind: str) -> None:
    # The composer's batch call (sign() is one of it): each message signed as
    # signatures() signs it over its own parse (RSA and Ed25519 signatures
    # here are deterministic), a message without From given its DKIMError in
    # its place, the others unaffected.
    signer = _signer(keys, kind)
    batch: list[tuple[bytes, int | None]] = [
        (MESSAGES["basic"], 1_700_000_000),
        (b"To: b@example.net\r\n\r\nno From\r\n", 1_700_000_001),
        (bytearray(MESSAGES["basic"]), 1_700_000_002),
        (MESSAGES["basic"].replace(b"\r\n", b"\n"), 1_700_000_003),
    ]
    got = signer.sign_many(batch)
    assert len(got) == 4
    for (message, t), out in zip(batch, got, strict=True):
        try:
            fields, normalized = signatures(bytes(message), [signer], timestamp=t)
            want: bytes | DKIMError = fields[0] + normalized
        except DKIMError as exc:
            want = exc
        if isinstance(want, DKIMError):
            assert isinstance(out, DKIMError)
            assert (out.message, out.field) == (want.message, want.field)
        else:
            assert out == want
            assert verify_all(out, _records(keys, kind)) == [True]
    assert isinstance(got[1], DKIMError) and not isinstance(got[0], DKIMError)


def test_a_key_that_gives_no_bytes_is_refused_not_read(keys: dict[str, bytes]) -> None:
    # sign_many's compiled loop copies what the key's sign gives: anything
    # but bytes is a TypeError there, never a read of a non-bytes object.
    signer = _signer(keys, "ed25519")
    signer._sign_data = lambda data: None  # type: ignore[assignment,return-value]
    with pytest.raises(TypeError, match="sign_data returned NoneType"):
        signer.sign_many([(MESSAGES["basic"], 1_700_000_000)])
