"""The byte scanners' sixteen-byte block tests (core/mailsflux/_simd.pxd),
both the form built here (SSE2 on x86-64) and the portable SWAR form, give
how many bytes of a block come before the first one each looks for.

A test's answer may be a lower bound of that offset where its form cannot
find the exact byte (the SWAR form off little-endian GCC or Clang, or
built with MF_SWAR_LOWER_BOUND), and is 16 exactly when the block holds
none; the scanners rely on that. Where the build says a form is exact
(SSE2; the SWAR form's ``BLOCKS_SWAR_EXACT``), it must be. The bytes lean on each test's edges:
0x1F/0x20/0x21, 0x3D, 0x7E/0x7F/0x80, 0xFF, NUL, tab, CR, LF, at every
offset, and the 17th byte the relaxed test reads.

The field-name block (name_lower16) also writes its sixteen bytes
lowercased (A-Z only, as relaxed header canonicalization lowercases a
name) and gives how many come before the first byte that ends a name: ``:``,
or a byte at or below SP (WSP before the colon, the CR of a fold or of the
line's end). Its edges add the capitals' ("@" "A" "Z" "["), the lower-case
ones, and 8-bit bytes whose low seven bits are capitals."""

from __future__ import annotations

import platform
import struct
import sys
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.compose import _mimebuild
from mailsflux.dkim import _canon

# RFC 3986's reserved marks (gen-delims and sub-delims) and "%": what the
# MIME writer leaves unquoted in a List-Unsubscribe URI besides letters,
# digits and "_.-~".
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"

_EDGES = (0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x21, 0x3D, 0x41, 0x7E, 0x7F, 0x80, 0xFF)
_NAME_EDGES = (0x00, 0x09, 0x0D, 0x20, 0x21, 0x39, 0x3A, 0x3B, 0x40, 0x41, 0x5A, 0x5B,
               0x60, 0x61, 0x7A, 0x7B, 0x7F, 0x80, 0xC1, 0xDA, 0xFF)  # fmt: skip


def _first(block: bytes, hit: object) -> int:
    for k in range(16):
        if hit(block, k):  # type: ignore[operator]
            return k
    return 16


def _line_end(b: bytes, k: int) -> bool:
    return b[k] in (10, 13)


def _unplain(b: bytes, k: int) -> bool:
    return b[k] < 0x20 or b[k] > 0x7E or b[k] == 0x3D


def _unclean(b: bytes, k: int) -> bool:
    # Not copied as it is by relaxed canonicalization: not above SP, and
    # not a SP followed by a byte above SP.
    return not (b[k] > 0x20 or (b[k] == 0x20 and b[k + 1] > 0x20))


def _check(data: bytes, at: int) -> None:
    block = data[at : at + 17]
    want = tuple(_first(block, hit) for hit in (_line_end, _unplain, _unclean))
    built, swar = _canon.block_skips(data, at)
    for got in (built, swar):
        for g, w in zip(got, want, strict=True):
            # the contract: a lower bound, and 16 exactly when there is none
            assert 0 <= g <= w and (g == 16) == (w == 16), (block, got, want)
    if _canon.BLOCKS_SSE2:
        assert built == want, (block, built, want)
    if _canon.BLOCKS_SWAR_EXACT:
        assert swar == want, (block, swar, want)


def _check_name(data: bytes, at: int) -> None:
    block = data[at : at + 16]
    want = next((k for k in range(16) if block[k] == 0x3A or block[k] <= 0x20), 16)
    built, swar = _canon.name_blocks(data, at)
    for k, wrote in (built, swar):
        assert wrote == block.lower(), (block, wrote)  # bytes.lower() changes A-Z only
        assert 0 <= k <= want and (k == 16) == (want == 16), (block, k, want)
    if _canon.BLOCKS_SSE2:
        assert built[0] == want, (block, built, want)
    if _canon.BLOCKS_SWAR_EXACT:
        assert swar[0] == want, (block, swar, want)


def _uri_ok(c: int) -> bool:
    # What quote() leaves as it is with the MIME writer's safe marks: the
    # URI block test's bytes are all the others.
    return c < 128 and quote(chr(c), safe=_URI_SAFE) == chr(c)


def test_the_writers_uri_marks_are_these() -> None:
    assert _mimebuild._URI_SAFE == _URI_SAFE


def _check_uri(data: bytes, at: int) -> None:
    block = data[at : at + 16]
    want = next((k for k in range(16) if not _uri_ok(block[k])), 16)
    built, swar = _canon.uri_blocks(data, at)
    for k in (built, swar):
        assert 0 <= k <= want and (k == 16) == (want == 16), (block, k, want)
    if _canon.BLOCKS_SSE2:
        assert built == want, (block, built, want)
    if _canon.BLOCKS_SWAR_EXACT:
        assert swar == want, (block, swar, want)


def test_the_build_here_uses_sse2_on_x86_64() -> None:
    # Unless built without them on purpose (MF_NO_SIMD, as CI's second
    # build is, with MF_SWAR_LOWER_BOUND).
    x86_64 = platform.machine().lower() in ("x86_64", "amd64") and struct.calcsize("P") == 8
    if x86_64 and not _canon.BLOCKS_SIMD_OFF:
        assert _canon.BLOCKS_SSE2
        if sys.platform == "linux":  # GCC or Clang, little-endian
            assert _canon.BLOCKS_SWAR_EXACT


def _edge_blocks(edges: tuple[int, ...], fill: bytes) -> list[bytes]:
    """``fill`` with one edge byte at each offset, and with each pair of
    them one after the other (first-of-two, and SP before each byte)."""
    out = []
    for v in edges:
        for k in range(len(fill)):
            block = bytearray(fill)
            block[k] = v
            out.append(bytes(block))
            for w in edges:
                if k < len(fill) - 1:
                    block[k + 1] = w
                    out.append(bytes(block))
                    block[k + 1] = fill[k + 1]
    return out


def test_each_edge_byte_at_each_offset_and_before_each_other() -> None:
    for block in _edge_blocks(_EDGES, b"a" * 17):
        _check(block, 0)


def test_each_name_edge_byte_at_each_offset_and_before_each_other() -> None:
    for block in _edge_blocks(_NAME_EDGES, b"Ab" * 8):
        _check_name(block, 0)


def test_each_byte_at_each_offset_of_a_uri_block() -> None:
    # Every byte value, alone in a run of URI characters and before each
    # printable one.
    for v in range(256):
        for block in _edge_blocks((v, 0x22, 0x3D, 0x7B, 0x7E), b"a%~" * 5 + b"z"):
            _check_uri(block, 0)


def test_a_block_read_at_every_offset_of_a_longer_buffer() -> None:
    data = bytes(range(256)) + b"x y  z\r\n=\t" * 4
    for at in range(len(data) - 16):
        _check(data, at)
        _check_name(data, at)
        _check_uri(data, at)


def test_short_buffers_are_refused() -> None:
    with pytest.raises(ValueError, match="17 bytes"):
        _canon.block_skips(b"a" * 16, 0)
    with pytest.raises(ValueError, match="17 bytes"):
        _canon.block_skips(b"a" * 40, 30)
    with pytest.raises(ValueError, match="17 bytes"):
        _canon.block_skips(b"a" * 40, -1)
    with pytest.raises(ValueError, match="16 bytes"):
        _canon.name_blocks(b"a" * 15, 0)
    with pytest.raises(ValueError, match="16 bytes"):
        _canon.name_blocks(b"a" * 40, 25)
    with pytest.raises(ValueError, match="16 bytes"):
        _canon.uri_blocks(b"a" * 15, 0)


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(st.sampled_from(_EDGES + _NAME_EDGES) | st.integers(0, 255), min_size=17, max_size=40)
)
def test_any_bytes(values: list[int]) -> None:
    data = bytes(values)
    for at in range(len(data) - 16):
        _check(data, at)
        _check_name(data, at)
        _check_uri(data, at)
