"""Tokens' base64url: the SSSE3 blocks (twelve bytes a step) and the table
alone give exactly what :func:`base64.urlsafe_b64encode` gives, unpadded."""

from __future__ import annotations

import base64
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux.dkim import _canon
from mailsflux.tracking import _rewrite as _track
from mailsflux.tracking.tokens import token_key

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _ssse3() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() not in ("x86_64", "AMD64", "i686") or not cpuinfo.exists():
        return False
    return " ssse3" in cpuinfo.read_text()


def _reference(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@pytest.fixture(params=[False, True], ids=["table", "ssse3"])
def simd(request: pytest.FixtureRequest) -> Iterator[bool]:
    on = _track.use_b64_simd(request.param)
    if request.param and not on:
        pytest.skip("this build or CPU has no SSSE3 blocks")
    try:
        yield on
    finally:
        _track.use_b64_simd(True)  # back to the default: the blocks where the CPU has them


def test_the_blocks_are_on_where_the_cpu_has_ssse3() -> None:
    # What an import leaves on, before any test switches it. A build with
    # MF_NO_SIMD (scripts/test_portable_scanners.sh builds every scanning
    # module with it) has the table alone.
    code = "from mailsflux.tracking import _rewrite as r; print(r.b64_simd())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(_ssse3() and not _canon.BLOCKS_SIMD_OFF)


def test_every_length_and_random_bytes(simd: bool) -> None:
    rng = random.Random(17)
    for n in range(0, 200):
        for _ in range(30):
            data = rng.randbytes(n)
            assert _track.b64url(data) == _reference(data), (simd, n, data)


def test_every_character_at_every_output_position(simd: bool) -> None:
    # 32 characters are 24 bytes, two blocks and the byte steps after them
    # when more follows: each of the 64 indices in each lane of each block.
    for tail in (b"", b"\xff" * 5, b"\x00" * 16):
        for j in range(32):
            for c in ALPHABET:
                text = b"A" * j + bytes([c]) + b"A" * (31 - j)
                data = base64.urlsafe_b64decode(text) + tail
                assert _track.b64url(data) == _reference(data), (simd, j, chr(c), tail)


def test_every_byte_at_every_offset(simd: bool) -> None:
    base = bytes(range(7, 7 + 50))
    for i in range(len(base)):
        for b in range(256):
            data = base[:i] + bytes([b]) + base[i + 1 :]
            assert _track.b64url(data) == _reference(data), (simd, i, b)


def test_rewritten_html_is_the_same_either_way() -> None:
    key = token_key(b"s" * 32)
    links = "".join(f'<a href="https://example.com/{"p" * i}">{i}</a>' for i in range(40))
    html = f"<html><body>{links}</body></html>".encode()
    outs = []
    try:
        for on in (False, True):
            _track.use_b64_simd(on)
            rw = _track.Rewriter("https://t.example.com", "k1", key)
            outs.append(rw.rewrite_html(html, "m.1@example.org", "ada@example.org", "j", 1))
    finally:
        _track.use_b64_simd(True)
    assert outs[0] == outs[1]
    assert outs[0].count(b"https://t.example.com/c/k1.") == 40
