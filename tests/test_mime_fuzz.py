"""Fuzz the compiled MIME module: random str, bytes and other values for every
argument of every entry point. Nothing may crash or hang, and the only
exceptions allowed are MailsfluxError subclasses, or TypeError/ValueError for
arguments of the wrong type. Whatever is produced keeps the wire rules."""

from __future__ import annotations

import binascii
import email
import email.policy
from typing import Any

import idna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.compose import _mimebuild as m
from mailsflux.errors import MailsfluxError

# Any str, lone surrogates included; strings that look like what the
# functions expect, with the usual attacks mixed in.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
tricky = st.sampled_from(
    [
        "",
        " ",
        "a@example.com",
        "Zoë <zoë@bücher.example>",
        '"Doe, Jane" <j@example.com>',
        "<a@b.example>",
        "x\r\nBcc: evil@example.com",
        "x\nBcc: evil@example.com",
        "x\rBcc",
        "nul\x00",
        "\ud800",
        "a" * 2000,
        "é" * 1000,
        "=?utf-8?b?SGk=?=",
        "<mailto:u@x.example>, <https://x.example/u?e=a>",
        "<https://x.example/\u2028>",
        "@",
        "a@",
        "a@-.example",
        "a@xn--.example",
        "a@" + "x" * 300 + ".example",
        "image/png",
        "multipart/mixed",
        "message/rfc822",
        "logo@x.example",
    ]
)
texts = st.one_of(any_text, tricky, st.text(max_size=2000))
blobs = st.one_of(
    st.binary(max_size=3000), st.sampled_from([b"", b"\r", b"\n\r", b"=_mfa", b"\x00" * 10])
)
anything = st.one_of(
    texts, blobs, st.none(), st.integers(), st.floats(), st.lists(texts, max_size=3)
)

ALLOWED = (MailsfluxError, TypeError, ValueError)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except ALLOWED:
        return None


def check_lines(out: bytes | str) -> None:
    raw = out.encode("utf-8") if isinstance(out, str) else out
    for line in raw.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line and b"\x00" not in line
        assert len(line) <= 998


def check_word_lines(header: bytes | str) -> None:
    """RFC 2047 section 2: a header line holding an encoded word is <= 76 long."""
    raw = header.encode("utf-8") if isinstance(header, str) else header
    for line in raw.split(b"\r\n"):
        if b"=?utf-8?b?" in line:
            assert len(line) <= 76, line


@pytest.mark.timeout(300)
@FUZZ
@given(
    st.sampled_from(["check_value", "fold", "encode_unstructured"]),
    st.one_of(texts, anything),
    st.one_of(texts, anything),
)
def test_header_functions(fn: str, name: Any, value: Any) -> None:
    out = call(getattr(m, fn), name, value)
    if fn == "encode_unstructured" and out is not None:
        assert out.isascii()
        check_lines(out)
        check_word_lines(out)
        assert out.startswith(name + ":")


@pytest.mark.timeout(300)
@FUZZ
@given(st.one_of(texts, anything), st.one_of(texts, anything), st.one_of(texts, anything))
def test_format_mailbox(name: Any, display: Any, address: Any) -> None:
    out = call(m.format_mailbox, name, display, address)
    if out is not None:
        line, addr = out
        check_lines(line)
        check_word_lines(line)
        assert isinstance(addr, m.Address)
        assert line.split("\r\n")[0].startswith(name + ":")


@pytest.mark.timeout(300)
@FUZZ
@given(st.one_of(texts, anything), st.one_of(st.integers(), anything))
def test_address_functions(text: Any, room: Any) -> None:
    a = call(m.parse_address, text)
    if a is not None:
        assert str(a).count("@") >= 1 and str(a).rsplit("@", 1)[1].isascii()
        assert a.smtputf8 == (not a.local.isascii())
    call(m.idna_domain, text)
    call(m.split_mailbox, text)
    call(m.check_name, text)
    words = call(m.encoded_words, text, room)
    if words:
        assert all(len(w) <= 75 for w in words)


# Domain labels mixing ASCII, Latin, Greek, joiners, dots of other scripts,
# bidi and unassigned code points: what IDNA 2008 decides about.
_label_chars = st.one_of(
    st.sampled_from(list("abz09-ßςΣüΟ")),
    st.sampled_from(list("_.\u200c\u200d\u3002\uff0e\u0661\u05d0\u0308\ufffe\ud800")),
    st.characters(codec=None, exclude_categories=()),
)
_labels = st.one_of(
    st.text(st.sampled_from(list("abz09-ßςΣüΟ")), min_size=1, max_size=8),
    st.text(_label_chars, max_size=12),
)
domains = st.lists(_labels, min_size=1, max_size=4).map(".".join)


@pytest.mark.timeout(300)
@FUZZ
@given(domains)
def test_idna_domains(domain: str) -> None:
    """Only AddressError, never an idna or Unicode error; what is accepted is
    the IDNA 2008 / UTS 46 non-transitional A-label form, the same for the
    address and the bare domain."""
    try:
        a = m.parse_address("u@" + domain)
    except MailsfluxError:
        a = None
    try:
        d = m.idna_domain(domain)
    except MailsfluxError:
        assert a is None
        return
    assert a is not None and a.domain == d
    assert d.isascii() and d == d.lower()
    if not domain.isascii():
        try:
            ref = idna.encode(domain.strip().rstrip("."), uts46=True, transitional=False)
        except idna.IDNAError:
            return  # an ASCII label idna checks more strictly (a bad xn--)
        # A label UTS 46 maps to nothing (U+00AD, soft hyphen) can leave the
        # root's dot at the end, which the domain's form never keeps.
        assert d == ref.decode().rstrip(".")


@pytest.mark.timeout(300)
@FUZZ
@given(st.one_of(blobs, anything), st.one_of(st.sampled_from(["plain", "html"]), anything))
def test_body_encoders(data: Any, subtype: Any) -> None:
    qp = call(m.quoted_printable, data)
    if qp is not None:
        check_lines(qp)
        assert all(len(line) <= 76 for line in qp.split(b"\r\n"))
        assert b"=_" not in qp
        normal = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        if not normal.endswith(b"\r\n"):
            normal += b"\r\n"
        assert binascii.a2b_qp(qp) == normal
    b64 = call(m.base64_lines, data)
    if b64 is not None:
        assert binascii.a2b_base64(b64.replace(b"\r\n", b"")) == data
        assert all(len(line) <= 76 for line in b64.split(b"\r\n"))
    call(m.crlf, data)
    part = call(m.text_part, data, subtype)
    if part is not None:
        check_lines(part)


@pytest.mark.timeout(300)
@FUZZ
@given(
    st.one_of(blobs, anything),
    st.one_of(texts, anything),
    st.one_of(texts, anything),
    st.one_of(texts, anything),
)
def test_attachment(data: Any, filename: Any, ctype: Any, cid: Any) -> None:
    a = call(m.Attachment, data, filename, ctype, cid=cid)
    if a is not None:
        check_lines(a.part)
        assert a.part.isascii()


@pytest.mark.timeout(300)
@FUZZ
@given(
    sender=st.one_of(texts, anything),
    reply_to=st.one_of(texts, anything),
    headers=st.one_of(
        st.dictionaries(texts, texts, max_size=3),
        st.lists(st.tuples(texts, texts), max_size=3),
        anything,
    ),
    attach=st.booleans(),
    build=st.fixed_dictionaries(
        {},
        optional={
            "to": st.one_of(texts, anything),
            "to_name": st.one_of(texts, anything),
            "subject": st.one_of(texts, anything),
            "date": st.one_of(texts, anything),
            "message_id": st.one_of(texts, anything),
            "text": st.one_of(blobs, anything),
            "html": st.one_of(blobs, anything),
            "sender": st.one_of(texts, anything),
            "list_unsubscribe": st.one_of(texts, anything),
            "boundary": st.one_of(texts, anything),
        },
    ),
)
def test_builder(
    sender: Any, reply_to: Any, headers: Any, attach: bool, build: dict[str, Any]
) -> None:
    parts = (
        {
            "attachments": [m.Attachment(b"%PDF", "a.pdf")],
            "inline": [m.Attachment(b"png", "a.png", "image/png", cid="a@x")],
        }
        if attach
        else {}
    )
    b = call(m.MessageBuilder, sender=sender, reply_to=reply_to, headers=headers, **parts)
    if b is None:
        b = m.MessageBuilder(sender="a@example.com", **parts)
    # A valid message with some arguments replaced by random values.
    base: dict[str, Any] = {
        "to": "zoë@bücher.example",
        "to_name": "Zoë",
        "subject": "Hi",
        "date": "Tue, 10 Mar 2026 10:00:00 +0000",
        "message_id": "x.1@example.com",
        "text": b"text",
        "html": b"<p>html</p>",
    }
    out = call(b.build, **{**base, **build})
    if out is not None:
        data, mail_from, rcpt_to, utf8 = out
        check_lines(data)
        check_word_lines(data.split(b"\r\n\r\n", 1)[0])
        assert data.endswith(b"\r\n")
        assert isinstance(utf8, bool)
        assert utf8 == (not mail_from.isascii() or not rcpt_to.isascii() or b.has_reply_to_utf8)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg.get_content_maintype() in ("text", "multipart")
