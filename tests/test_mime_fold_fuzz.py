"""Header folding (the Subject, List-Unsubscribe and display names), which
finds its fold points with memchr, folds exactly where the byte-at-a-time
loop it replaced folded, for any value.

``_fold_ref`` below is that loop in Python, step for step: a line breaks
before a space that follows a non-space, once the next word would pass
column 78. The inputs lean on runs of spaces, a space first or last, words
longer than a line, and values with no space at all (a URI)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose._mimebuild import fold

FOLD_AT = 78


def _fold_ref(name: str, value: str) -> str:
    s = value.encode("utf-8")
    n, a = len(s), 0
    cur = len(name.encode()) + 2  # "Name:" and the space after it
    out = bytearray(name.encode() + b": ")
    while a < n:
        b = a + 1
        while b < n and not (s[b] == 32 and s[b - 1] != 32):
            b += 1
        if a > 0 and cur + (b - a) > FOLD_AT:
            out += b"\r\n"
            cur = 0
        out += s[a:b]
        cur += b - a
        a = b
    return out.decode("utf-8")


_words = st.lists(
    st.sampled_from(
        ["a", "word", "x" * 30, "y" * 90, " ", "  ", "   ", "é", "<https://t.example/u/x>,"]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(["Subject", "List-Unsubscribe", "X"]), _words | st.text(max_size=200))
@example("Subject", "")
@example("Subject", " leading and trailing ")
@example("Subject", "a" * 200)
@example("List-Unsubscribe", "<https://t.example/u/" + "t" * 120 + ">, <mailto:u@example.com>")
def test_fold_matches_the_byte_loop(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        return  # refused before folding (tests/test_headers.py)
    assert fold(name, value) == _fold_ref(name, value)
