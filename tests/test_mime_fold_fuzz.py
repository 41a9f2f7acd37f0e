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

from mailsflux.compose._mimebuild import fold, format_mailbox

FOLD_AT = 78


def _fold_ref(name: str, value: str) -> str:
    return _folded(name, value)[0]


def _folded(name: str, value: str) -> tuple[str, int]:
    """The folded line and its longest line's length."""
    s = value.encode("utf-8")
    n, a, longest = len(s), 0, 0
    cur = len(name.encode()) + 2  # "Name:" and the space after it
    out = bytearray(name.encode() + b": ")
    while a < n:
        b = a + 1
        while b < n and not (s[b] == 32 and s[b - 1] != 32):
            b += 1
        if a > 0 and cur + (b - a) > FOLD_AT:
            longest = max(longest, cur)
            out += b"\r\n"
            cur = 0
        out += s[a:b]
        cur += b - a
        a = b
    return out.decode("utf-8"), max(longest, cur)


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


_SPECIALS = '()<>[]:;@\\,."'


def _mailbox_ref(name: str, display: str, address: str) -> str | None:
    """``Name: Display <address>`` for a plain ASCII display name (RFC 5322
    3.4: quoted when it holds specials), folded as one value when the name
    fits the line; None for any other (encoded words)."""
    display = display.strip()
    if not display:
        return f"{name}: {address}"
    plain = (
        all(32 <= ord(c) <= 126 for c in display) and "  " not in display and "=?" not in display
    )
    if not plain:
        return None
    if any(c in _SPECIALS for c in display):
        display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if _folded(name, display)[1] > FOLD_AT:
        return None
    return _fold_ref(name, f"{display} <{address}>")


_displays = st.lists(
    st.sampled_from(["Ann", "Lee", " ", "Doe,", "J.", '"q"', "a\\b", "(x)", "x" * 40, "y" * 70]),
    max_size=6,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(
    _displays | st.text(alphabet='aZ ,."<@\\é', max_size=40),
    st.sampled_from(
        [
            "a@example.org",
            "someone.long.name@" + "d" * 60 + ".example",
            "x@" + ".".join(["e" * 60] * 3) + ".org",
        ]
    ),
)
@example("Doe, John", "j@example.org")
@example("x" * 70, "a@example.org")
@example("x" * 240, "a@example.org")
def test_display_names_fold_with_their_address(display: str, address: str) -> None:
    want = _mailbox_ref("To", display, address)
    if want is None:
        return  # encoded words: tests/test_headers_encoded_word_lines.py
    line, _ = format_mailbox("To", display, address)
    assert line == want


def test_each_special_quotes_a_display_name_and_nothing_else_does() -> None:
    for c in map(chr, range(32, 127)):
        display = f"Ann {c}Lee"
        want = _mailbox_ref("To", display, "a@example.org")
        if want is None:
            continue  # "=?" and the like: encoded words
        line, _ = format_mailbox("To", display, "a@example.org")
        assert line == want, c
        assert line.startswith('To: "') == (c in _SPECIALS), c
