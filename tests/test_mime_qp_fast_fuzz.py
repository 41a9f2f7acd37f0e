"""The compiled quoted-printable encoder, which takes the plain bytes of a
line sixteen at a time, writes exactly what the byte-at-a-time encoder it
replaced wrote, for any bytes.

``_qp_ref`` below is that encoder in Python, step for step. The inputs lean
on what the block test looks for and what the byte step decides: a space or
tab before CR, LF or the end, ``=``, bytes at 0x1F/0x20 and 0x7E/0x7F/0xFF,
``.`` and ``From `` at a line's start, and runs that cross the 75-column
soft break, at every offset within a block."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.compose import _mimebuild as m

_HEX = b"0123456789ABCDEF"


def _cls(c: int) -> int:
    # 0 literal, 1 always =XX, 2 space/tab (=XX before a line end), 3 CR or LF.
    if c in (13, 10):
        return 3
    if c in (32, 9):
        return 2
    return 0 if 33 <= c <= 126 and c != 61 else 1


def _qp_ref(s: bytes) -> bytes:
    """RFC 2045 6.7 as the compiled encoder did it a byte at a time."""
    out = bytearray()
    n, i, col = len(s), 0, 0
    while i < n:
        c = s[i]
        k = _cls(c)
        if k == 3:
            out += b"\r\n"
            col = 0
            if c == 13 and i + 1 < n and s[i + 1] == 10:
                i += 1
            i += 1
            continue
        enc = k == 1
        if k == 2:
            enc = i + 1 == n or s[i + 1] in (13, 10)
        elif col == 0 and k == 0:
            enc = c == 46 or (c == 70 and s[i + 1 : i + 5] == b"rom ")
        need = 3 if enc else 1
        if col + need > 75:
            out += b"=\r\n"
            col = 0
            continue  # this byte again, now at the start of a line
        if enc:
            out += bytes((61, _HEX[c >> 4], _HEX[c & 15]))
        else:
            out.append(c)
        col += need
        i += 1
    if n == 0 or s[-1] not in (10, 13):
        out += b"\r\n"
    return bytes(out)


_EDGES = b"\r\n\t =.F\x00\x1f\x20\x7e\x7f\x80\xffaZ"
pieces = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from(list(_EDGES)), max_size=40).map(bytes),
    st.sampled_from(
        [
            b" \r\n",
            b" \n",
            b"\t\r",
            b"  ",
            b" =",
            b"From ",
            b".",
            b"\r\n",
            b"x" * 7,
            b"y" * 9,
            b"x" * 15,
            b"y" * 17,
        ]
    ),
    st.integers(60, 90).map(lambda k: b"a" * k),
    st.integers(1, 12).map(lambda k: b"word " * k),
)
data = st.lists(pieces, max_size=40).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(data, st.integers(0, 15))
def test_qp_matches_the_byte_loop(body: bytes, shift: int) -> None:
    body = b"p" * shift + body  # every alignment of the blocks against the content
    assert m.quoted_printable(body) == _qp_ref(body)


@pytest.mark.parametrize(
    ("body", "encoded"),
    [
        (b"", b"\r\n"),
        (b"seven words then a space \r\n", b"seven words then a space=20\r\n"),
        # Short: all by the byte step.
        (b"abcdefg \nx", b"abcdefg=20\r\nx\r\n"),
        (b"abcdefg x", b"abcdefg x\r\n"),
        (b"abcdef \tx", b"abcdef \tx\r\n"),
        (b"abcdef=x", b"abcdef=3Dx\r\n"),
        (b"abcdefgh\xc3\xa9 ", b"abcdefgh=C3=A9=20\r\n"),
        (b"a\n.b\nFrom me", b"a\r\n=2Eb\r\n=46rom me\r\n"),
        (b"x" * 80, b"x" * 75 + b"=\r\n" + b"x" * 5 + b"\r\n"),
        (b"x" * 74 + b"=", b"x" * 74 + b"=\r\n=3D\r\n"),
        # A block from the second byte (the first, at column 0, goes alone):
        # its last byte a space, and the byte after it ends the line ...
        (b"a" + b"b" * 15 + b" \nx", b"a" + b"b" * 15 + b"=20\r\nx\r\n"),
        # ... or is text;
        (b"a" + b"b" * 15 + b" x" + b"y" * 16, b"a" + b"b" * 15 + b" x" + b"y" * 16 + b"\r\n"),
        # a space then a tab inside a block; "=" and 8-bit bytes inside one.
        (b"a" + b"b" * 14 + b" \t" + b"x" * 16, b"a" + b"b" * 14 + b" \t" + b"x" * 16 + b"\r\n"),
        (b"a" + b"b" * 10 + b"=" + b"c" * 10, b"a" + b"b" * 10 + b"=3D" + b"c" * 10 + b"\r\n"),
        (
            b"a" * 11 + b"\xc3\xa9" + b"c" * 10 + b" ",
            b"a" * 11 + b"=C3=A9" + b"c" * 10 + b"=20\r\n",
        ),
    ],
)
def test_qp_cases(body: bytes, encoded: bytes) -> None:
    assert m.quoted_printable(body) == encoded
    assert _qp_ref(body) == encoded
    text = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert binascii.a2b_qp(encoded) == (text if text.endswith(b"\r\n") else text + b"\r\n")
