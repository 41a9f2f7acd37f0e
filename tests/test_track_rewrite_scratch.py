"""rewrite_html keeps its working buffers between calls: a Rewriter that has
rewritten other parts before, large or small, writes what a new one writes;
a call that fails leaves them free; a call running while another holds them
uses its own; and a buffer grown past 1 MiB is not kept."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from mailsflux.tracking import _rewrite as _track
from mailsflux.tracking.tokens import token_key

BASE = "https://t.example.com"
KEY = token_key(b"s" * 32)


def _html(links: int, filler: int = 0, seed: int = 0, ref: str = "") -> bytes:
    hrefs = [f"https://example.com/{seed}/{'p' * (i % 40)}?q={i}{ref}" for i in range(links)]
    body = "".join(f'<p>{"x" * (i % 7)}<a href="{h}">{i}</a></p>' for i, h in enumerate(hrefs))
    return f"<html><body>{'f' * filler}{body}</body></html>".encode()


CASES: list[tuple[bytes, dict[str, object]]] = [
    (_html(0), {}),
    (_html(1), {}),
    (_html(60, seed=1), {}),
    (_html(3, filler=5000, seed=2), {}),
    (_html(5, seed=3), {"clicks": False}),
    (_html(5, seed=4), {"opens": False}),
    (_html(4, seed=5), {"skip_prefix": b"https://example.com/5/pp"}),
    (b"<p>no body tag, <a href='https://example.com/q'>one</a>", {}),
]


def _rewrite(rw: _track.Rewriter, html: bytes, i: int, **kw: object) -> bytes:
    mid, sent = f"m{i}@example.org", 1_760_000_000 + i
    return rw.rewrite_html(html, mid, "ada@example.org", "job", sent, **kw)  # type: ignore[arg-type]


def _fresh(html: bytes, i: int, **kw: object) -> bytes:
    return _rewrite(_track.Rewriter(BASE, "k1", KEY), html, i, **kw)


@pytest.fixture(params=[False, True], ids=["cryptography", "aes-ni"])
def ni(request: pytest.FixtureRequest) -> Iterator[bool]:
    if request.param and not _track.aes_ni_available():
        pytest.skip("no AES-NI on this CPU")
    _track.use_aes_ni(request.param)
    try:
        yield request.param
    finally:
        _track.use_aes_ni(True)


def test_a_used_rewriter_writes_what_a_new_one_writes(ni: bool) -> None:
    rw = _track.Rewriter(BASE, "k1", KEY)
    # Each case after every other, so each finds what the one before left.
    order = [j for i in range(len(CASES)) for j in (i, (i + 3) % len(CASES))]
    for step, j in enumerate(order):
        html, kw = CASES[j]
        assert _rewrite(rw, html, step, **kw) == _fresh(html, step, **kw), (step, j)
    taken, *caps = _track.kept_scratch(rw)
    assert not taken and all(c > 0 for c in caps), caps


def test_a_failed_call_leaves_the_buffers_free() -> None:
    rw = _track.Rewriter(BASE, "k1", KEY)
    _rewrite(rw, _html(10), 0)
    with pytest.raises(UnicodeEncodeError):
        rw.rewrite_html(_html(10), "\ud800@example.org", "ada@example.org", "job", 1)
    assert not _track.kept_scratch(rw)[0]
    assert _rewrite(rw, _html(2), 1) == _fresh(_html(2), 1)


def test_a_buffer_grown_past_a_mebibyte_is_not_kept() -> None:
    rw = _track.Rewriter(BASE, "k1", KEY)
    big = _html(20, filler=3 << 20)
    assert _rewrite(rw, big, 0) == _fresh(big, 0)
    taken, out, *small = _track.kept_scratch(rw)
    assert not taken and out == 0 and all(0 < c <= 1 << 20 for c in small), small
    assert _rewrite(rw, _html(3), 1) == _fresh(_html(3), 1)
    assert 0 < _track.kept_scratch(rw)[1] <= 1 << 20


def test_calls_from_threads_at_once_each_get_their_own_answer() -> None:
    # A numeric character reference in an href is decoded by html.unescape,
    # in Python, where the interpreter switches threads: calls overlap, and
    # those that find the kept buffers taken must use their own.
    rw = _track.Rewriter(BASE, "k1", KEY)
    inputs = [(_html(1 + (i % 9) * 7, (i % 4) * 300, i, "&#x41;"), i) for i in range(24)]
    expected = {i: _fresh(h, i) for h, i in inputs}
    wrong: list[int] = []

    def work(part: list[tuple[bytes, int]]) -> None:
        for _ in range(15):
            for h, i in part:
                if _rewrite(rw, h, i) != expected[i]:
                    wrong.append(i)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(inputs[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    assert wrong == []
    assert not _track.kept_scratch(rw)[0]
