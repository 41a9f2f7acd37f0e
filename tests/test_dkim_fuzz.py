"""Hypothesis fuzzing of the compiled canonicalizers against RFC-text references.

The references below are written straight from RFC 6376 section 3.4 with
Python's ``re``/``bytes`` methods, independently of the Cython code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiosmtplib.protocol import normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.dkim import _canon as _dkim

WSP = b" \t"
PIECES = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"\r\n ", b"\r\n\t", b"\x00", b"a", b"Z", b":",
          b"\x80", b"\xff", b"\x7f", b"  ", b"x y", b"\xc3\xa9", b";"]  # fmt: skip
# Bytes biased toward what matters to canonicalization, plus plain random bytes.
data = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join),
    st.binary(max_size=200),
)
FUZZ = settings(max_examples=300, deadline=None)


# RFC 6376 section 3.4.4 (relaxed body), from the RFC text.
def ref_relaxed_body(body: bytes) -> bytes:
    if not body:
        return b""
    lines = body.split(b"\r\n")
    if body.endswith(b"\r\n"):
        lines.pop()  # the CRLF ends the last line; it does not start a new one
    # a. "Ignore all whitespace at the end of lines"; "Reduce all sequences
    #    of WSP within a line to a single SP character."
    lines = [re.sub(rb"[ \t]+", b" ", line).rstrip(WSP) for line in lines]
    # b. "Ignore all empty lines at the end of the message body."
    while lines and lines[-1] == b"":
        lines.pop()
    # "If the body is non-empty but does not end with a CRLF, a CRLF is added."
    return b"".join(line + b"\r\n" for line in lines)


# RFC 6376 section 3.4.3 (simple body).
def ref_simple_body(body: bytes) -> bytes:
    # "ignores all empty lines at the end of the message body"
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    # "If there is no body or no trailing CRLF on the message body, a CRLF is added."
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body


# RFC 6376 section 3.4.2 (relaxed header), for one field without its CRLF.
def ref_relaxed_header(field: bytes) -> bytes:
    name, colon, value = field.partition(b":")

    def unfold_collapse(text: bytes) -> bytes:
        # "Unfold all header field continuation lines" (CRLF followed by WSP),
        # then "Convert all sequences of one or more WSP characters to a single SP".
        return re.sub(rb"[ \t]+", b" ", re.sub(rb"\r\n(?=[ \t])", b"", text))

    # "Convert all header field names (not the header field values) to lowercase."
    name = unfold_collapse(name.lower()).rstrip(WSP)  # "Delete any WSP ... before ... the colon"
    if not colon:
        return name
    # "Delete all WSP characters at the end of each unfolded header field value";
    # "Delete any WSP characters remaining ... after the colon".
    value = unfold_collapse(value).strip(WSP)
    return name + b":" + value


# RFC 6376 section 5.4.2: each h= name takes the last field of that name
# not yet taken (bottom-up); a name with no field left adds nothing.
def ref_selected(
    raw: list[bytes], names: list[bytes | None], h: Iterable[bytes], relaxed: bool = True
) -> bytes:
    """The header hash input of fields ``raw`` (each without its CRLF) for
    ``h``: ``names[k]`` is field k's name as h= spells it (lowercase, WSP
    before the colon dropped), None for a field without a colon."""
    used: set[int] = set()
    out = b""
    for want in h:
        for k in range(len(raw) - 1, -1, -1):
            if k not in used and names[k] == want:
                used.add(k)
                out += (ref_relaxed_header(raw[k]) if relaxed else raw[k]) + b"\r\n"
                break
    return out


@FUZZ
@given(data)
def test_relaxed_body_matches_reference(body: bytes) -> None:
    assert _dkim.canonicalize_body(body, True) == ref_relaxed_body(body)


# Long runs that relaxed canonicalization copies as they are, broken by
# what it changes, at every offset of its sixteen-byte blocks.
runs = st.lists(
    st.sampled_from([b"word ", b"longerword", b"x" * 15, b"y" * 17, b" ", b"  ", b"\t",
                     b"\r\n", b"\r\n ", b"\xff", b"a ", b"\x00", b":"]),
    max_size=40,
).map(b"".join)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(runs, st.integers(0, 15))
def test_relaxed_at_every_block_alignment(body: bytes, shift: int) -> None:
    body = b"p" * shift + body
    assert _dkim.canonicalize_body(body, True) == ref_relaxed_body(body)
    assert _dkim.canonicalize_header(body, True) == ref_relaxed_header(body)
    field = b"Subject:" + body
    assert _dkim.canonicalize_header(field, True) == ref_relaxed_header(field)


@FUZZ
@given(data)
def test_simple_body_matches_reference(body: bytes) -> None:
    assert _dkim.canonicalize_body(body, False) == ref_simple_body(body)


@FUZZ
@given(data, data)
def test_relaxed_header_matches_reference(name: bytes, value: bytes) -> None:
    for field in (name + b":" + value, name, value):
        assert _dkim.canonicalize_header(field, True) == ref_relaxed_header(field)
        assert _dkim.canonicalize_header(field, False) == field


@FUZZ
@given(data)
def test_normalization_matches_smtp_transport(message: bytes) -> None:
    normalized = _dkim.normalize_crlf(message)
    if message:
        # What aiosmtplib sends in DATA is exactly what we sign.
        assert normalized == normalize_message_line_endings(message)
    else:
        assert normalized == b""
    assert _dkim.normalize_crlf(normalized) is normalized


@FUZZ
@given(data, st.lists(st.sampled_from([b"a", b"b", b"from", b"", b"x y", b"\xff"]), max_size=6))
def test_message_parsing_never_crashes(message: bytes, names: list[bytes]) -> None:
    msg = _dkim.Message(message)
    assert msg.data == _dkim.normalize_crlf(message)
    assert 0 <= msg.body_start <= len(msg.data)
    counts = msg.counts(tuple(names))
    assert all(c >= 0 for c in counts)
    for relaxed in (False, True):
        hashed = msg.header_hash_input(tuple(names), relaxed, b"DKIM-Signature: b=")
        assert hashed.endswith(b"dkim-signature:b=" if relaxed else b"DKIM-Signature: b=")
        assert len(msg.body_hash(relaxed)) == 32
        assert msg.canonical_body(relaxed) == (
            ref_relaxed_body(msg.body) if relaxed else ref_simple_body(msg.body)
        )


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"From", b"to", b"SUBJECT", b"X-A", b"from "]),
            st.lists(st.sampled_from(PIECES[:2] + PIECES[8:]), max_size=8).map(b"".join),
            st.lists(st.sampled_from([b" x", b"\ty  ", b" "]), max_size=3),
        ),
        max_size=8,
    ),
    st.lists(st.sampled_from([b"from", b"to", b"subject", b"x-a"]), max_size=8),
)
def test_header_selection_matches_reference(
    fields: list[tuple[bytes, bytes, list[bytes]]], h: list[bytes]
) -> None:
    """Parsed fields, bottom-up h= selection and relaxed canon agree with a plain model."""
    raw = [
        name + b":" + value + b"".join(b"\r\n" + c for c in cont) for name, value, cont in fields
    ]
    message = b"".join(f + b"\r\n" for f in raw) + b"\r\nbody\r\n"
    if b"\r" in b"".join(v for _, v, _ in fields) or b"\n" in b"".join(v for _, v, _ in fields):
        return  # a bare CR/LF in a value would split the field; covered elsewhere
    msg = _dkim.Message(message)
    assert msg.header_count == len(raw)
    names: list[bytes | None] = [name.rstrip(WSP).lower() for name, _, _ in fields]
    assert msg.header_hash_input(tuple(h), True) == ref_selected(raw, names, h)
