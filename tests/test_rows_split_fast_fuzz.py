"""The reader's own split of a line is the csv module's row for it (issue 17).

``mailsflux.jobs._rows`` splits a recipient file's line at its commas
itself when the line holds no quote or line end but its last, and is
shorter than the csv module's field size limit; any other line it leaves to
the csv module (None). Random lines from an alphabet of the characters that
matter (comma, quote, CR, LF, NUL, space, Latin-1, UCS2, UCS4, a lone
surrogate as surrogateescape leaves one) and every field size limit around
their length: where it splits, its fields are the module's (excel dialect,
strict); where it declines, the line holds one of those, or is too long.
"""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.jobs._rows import split

_ALPHABET = st.sampled_from(list(',",\r\n\x00 a\u00e9\u4e2d\U0001f600\udcff\t;'))
_ENDS = st.sampled_from(["\n", "\r\n", "\r", ""])


def _csv_row(line: str, limit: int) -> list[str] | None:
    old = csv.field_size_limit(limit)
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(old)


def _needs_csv(body: str) -> bool:
    return any(c in body for c in '"\r\n')  # NUL is text to the csv module since 3.11


@settings(max_examples=3000, deadline=None)
@given(st.text(_ALPHABET, max_size=30), _ENDS, st.integers(1, 40))
def test_a_split_line_is_the_csv_modules_row(body: str, end: str, limit: int) -> None:
    line = body + end
    content = line[:-1] if line.endswith("\n") else line
    content = content[:-1] if content.endswith("\r") else content  # the line end: LF, CR LF, CR
    got = split(line, limit)
    if got is None:
        assert _needs_csv(content) or len(content) >= limit
        return
    assert not _needs_csv(content) and len(content) < limit
    assert got == _csv_row(line, limit)
    assert all(type(f) is str for f in got)


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("a,b,c\n", ["a", "b", "c"]),
        ("a,b\r\n", ["a", "b"]),
        ("a,b\r", ["a", "b"]),
        ("a,b", ["a", "b"]),
        ("\n", []),
        ("\r\n", []),
        ("   \n", ["   "]),
        (",\n", ["", ""]),
        (" a , b \n", [" a ", " b "]),
        ("a\x00b,\x00\n", ["a\x00b", "\x00"]),
        ("\u00e9,\u4e2d,\U0001f600\n", ["\u00e9", "\u4e2d", "\U0001f600"]),
    ],
)
def test_lines_it_splits(line: str, want: list[str]) -> None:
    assert split(line) == want == next(csv.reader([line], strict=True))


@pytest.mark.parametrize(
    "line", ['a,"b"\n', 'a"b\n', "a\rb\n", "a\nb\n", "a\n\n", b"a,b\n", None, 7]
)
def test_lines_it_leaves_to_the_csv_module(line: object) -> None:
    assert split(line) is None


def test_the_field_size_limit_is_the_csv_modules() -> None:
    # A line as long as the limit may hold a field as long as it, which the
    # csv module refuses one character later: such lines go to it.
    old = csv.field_size_limit(5)
    try:
        assert split("abcd\n") == ["abcd"]
        assert split("abcde\n") is None
        assert split("abcde\n", 6) == ["abcde"]
    finally:
        csv.field_size_limit(old)
