"""The row count by line ends (``count_lines``) is the CSV reader's count
(``count_csv_rows``) for every file it answers, or it leaves the file to the
reader: blank and whitespace-only lines (Unicode's too), a BOM, CRLF, a last
line without its end, bytes that are not UTF-8, and lines split across the
blocks it reads."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.jobs.recipients import RecipientFile, count_csv_rows, count_lines, open_csv

_PIECES = [
    b"a", b"zoe@example.org", b",", b" ", b"\t", b"\x0b", b"\x1c", b"\x00", b"\n", b"\r\n",
    "\u3000".encode(), "\u0085".encode(), "\u2028".encode(), "é".encode(), "\ufeff".encode(),
    b"\xff", b"\xc3",
]  # fmt: skip
_RARE = [b'"', b"\r"]  # the reader alone can tell these files' rows


def _reader_count(path: Path) -> int:
    with open_csv(path) as fh:
        return count_csv_rows(fh)


@settings(max_examples=600, deadline=None)
@given(
    body=st.lists(st.sampled_from(_PIECES + _RARE), max_size=60).map(b"".join),
    bom=st.booleans(),
    chunk=st.sampled_from([1, 2, 3, 5, 8, 64, 1 << 20]),
)
@example(body=b"email\n\n  \nzoe@example.org", bom=True, chunk=1)
@example(body="email\n\u3000\r\n\u2028\nx\n".encode(), bom=False, chunk=3)
@example(body=b"email\n\xff\n \xc3\n", bom=False, chunk=2)
def test_the_count_by_line_ends_is_the_readers(
    tmp_path_factory: pytest.TempPathFactory, body: bytes, bom: bool, chunk: int
) -> None:
    path = tmp_path_factory.mktemp("count") / "r.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
    fast = count_lines(path, chunk=chunk)
    if fast is None:
        assert any(c in body for c in _RARE)
    else:
        assert fast == _reader_count(path)


def test_a_whitespace_line_past_the_field_limit_is_left_to_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"email\n" + b" " * 50 + b"\nzoe@example.org\n")
    old = csv.field_size_limit(20)
    try:
        assert count_lines(path) is None
        assert _reader_count(path) == 2  # the long blank line is an error row to it
    finally:
        csv.field_size_limit(old)


def test_quoted_rows_spanning_lines_are_counted_by_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('email,note\nzoe@example.org,"two\nlines"\nade@example.org,x\n')
    assert count_lines(path) is None
    assert RecipientFile(path).count_rows() == 2
