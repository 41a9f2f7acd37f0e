"""The block-at-a-time 7bit check and CRLF copy of the compiled MIME module
decide and write exactly what the byte-at-a-time code does, for any bytes.

``seven_bit(data)`` against the byte-at-a-time loop it replaced (below, in
Python), and ``crlf(data)`` against a regex rewrite of line ends. The inputs
lean on what the block tests look for: CR, LF, tab, space before a line end,
``=`` and ``=_mf``, bytes at 0x1F/0x20 and 0x7E/0x7F/0xFF, and lines around
the 998-octet limit, at every offset within a block."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.compose import _mimebuild as m

_EDGES = b"\r\n\t =_mf\x00\x1f\x20\x7e\x7f\x80\xff.aZ"
pieces = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from(list(_EDGES)), max_size=40).map(bytes),
    st.sampled_from(
        [
            b"=_mf",
            b" \r\n",
            b"\t\n",
            b"\r\n",
            b"\r",
            b"\n",
            b"x" * 7,
            b"y" * 9,
            b"x" * 15,
            b"y" * 17,
        ]
    ),
    st.integers(990, 1002).map(lambda k: b"a" * k),
)
data = st.lists(pieces, max_size=30).map(b"".join)


def _seven_bit_ref(s: bytes) -> bool:
    """Printable ASCII and tabs, lines of at most 998 octets, no space or tab
    before a line end, no ``=_mf``: the compiled loop before blocks."""
    col, prev = 0, 0
    for i, c in enumerate(s):
        if c in (13, 10):
            if prev in (32, 9):
                return False
            col = 0
        elif (c < 32 and c != 9) or c > 126:
            return False
        else:
            col += 1
            if col > 998 or s[i : i + 4] == b"=_mf":
                return False
        prev = c
    return prev not in (32, 9)


def _crlf_ref(b: bytes) -> bytes:
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", b)
    return out if out.endswith(b"\r\n") else out + b"\r\n"


@settings(max_examples=3000, deadline=None)
@given(data, st.integers(0, 15))
def test_seven_bit_matches_the_byte_loop(body: bytes, shift: int) -> None:
    body = b"p" * shift + body  # every alignment of the blocks against the content
    assert m.seven_bit(body) == _seven_bit_ref(body)


@settings(max_examples=3000, deadline=None)
@given(data, st.integers(0, 15))
def test_crlf_matches_a_regex_rewrite(body: bytes, shift: int) -> None:
    body = b"p" * shift + body
    assert m.crlf(body) == _crlf_ref(body)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b"", True),
        (b"plain text line\n", True),
        (b"a" * 998 + b"\n", True),
        (b"a" * 999 + b"\n", False),
        (b"a" * 16 * 63, False),  # 1008 octets in whole blocks, no line end
        (b"trailing space \nnext", False),
        (b"trailing tab\t\r\n", False),
        (b"inner\ttab ok\n", True),
        (b"boundary-like =_mf text", False),
        (b"= alone is fine, a=b too\n", True),
        (b"del \x7f", False),
        (b"nul \x00 byte", False),
        (b"caf\xc3\xa9", False),
        (b"ends in a space ", False),
    ],
)
def test_seven_bit_decisions(body: bytes, ok: bool) -> None:
    assert m.seven_bit(body) is ok
    assert _seven_bit_ref(body) is ok


def _one_pass_ref(body: bytes) -> bytes | None:
    return _crlf_ref(body) if _seven_bit_ref(body) else None


@settings(max_examples=3000, deadline=None)
@given(data, st.integers(0, 15))
def test_the_one_pass_writer_decides_and_writes_as_the_two_passes(body: bytes, shift: int) -> None:
    """``seven_bit_body`` (what a text part's body is written with) gives
    ``crlf(body)`` exactly when ``seven_bit(body)``, else None."""
    body = b"p" * shift + body
    assert m.seven_bit_body(body) == _one_pass_ref(body)


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r", b" \r\n", b"\t\n", b"=_mf", b"\x80"])
def test_the_one_pass_writer_across_its_4096_byte_chunks(end: bytes) -> None:
    # 7bit lines filling the first chunk up to each byte around its end,
    # then a line end or a failing byte there: a CR LF pair split by the
    # chunk's end, a block cut short by it, a failure in the next chunk.
    line = b"x" * 70 + b"\r\n"
    for k in range(4080, 4100):
        head = (line * 57)[: k - 1] + b"y"
        for tail in (b"", b"more text\r\n", b"z" * 20):
            body = head + end + tail
            assert m.seven_bit_body(body) == _one_pass_ref(body), (k, end, tail)


@pytest.mark.parametrize(("body", "ok"), [(b"plain\n", True), (b"caf\xc3\xa9\n", False)])
def test_a_text_part_says_the_encoding_it_was_written_in(body: bytes, ok: bool) -> None:
    part = m.text_part(body)
    head, _, written = part.partition(b"\r\n\r\n")
    if ok:
        assert head.endswith(b"Content-Transfer-Encoding: 7bit") and written == _crlf_ref(body)
    else:
        assert head.endswith(b"Content-Transfer-Encoding: quoted-printable")
        assert written == m.quoted_printable(body)
        assert b"7bit" not in part


@pytest.mark.parametrize("length", range(990, 1003))
def test_the_line_limit_where_a_block_ends_the_line(length: int) -> None:
    # More bytes follow the line end, so blocks, not single bytes, take the
    # line's last bytes up to it, at every offset.
    for lead in range(16):
        body = b"b" * lead + b"\n" + b"a" * length + b"\n" + b"c" * 40
        ok = length <= 998
        assert m.seven_bit(body) is ok, (length, lead)
        assert m.seven_bit_body(body) == (_crlf_ref(body) if ok else None), (length, lead)
