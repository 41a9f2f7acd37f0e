"""Streaming reader of recipient files (CSV with an ``email`` column).

Rows are read one at a time, so a file of millions of rows costs the memory
of one row plus the addresses already seen, kept in a :class:`SeenSet` (11.4
to 22.9 bytes an address plus a 1 MB buffer; the addresses themselves go,
encrypted, to an unlinked temp file in TMPDIR). Its table starts at the size
the file's length suggests (:func:`seen_capacity`, at most 16 MB), so a big
file does not pay for the table doubling again and again. A bad row becomes a
:class:`Problem` naming file and line; it never stops the reader.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from mailsflux.compose import parse_address
from mailsflux.errors import AddressError, RecipientError
from mailsflux.jobs._rows import END, FULL, Lines, RowTaker
from mailsflux.jobs.seen import LOAD, SeenSet
from mailsflux.types import Problem, Recipient

#: Bytes a row is taken to need, to size the duplicate check's table from the
#: file's length: a short address and its line end (a row with a name and a
#: few variables is 60 to 100; a smaller guess costs table, not time).
ROW_BYTES = 16
#: The duplicate check's table starts between these sizes (slots of 8 bytes:
#: 512 KB to 16 MB), and doubles only past what the larger one holds.
SEEN_MIN, SEEN_MAX = 1 << 16, 1 << 21
#: Good rows :meth:`RecipientFile.runs` hands over together by default.
RUN_ROWS = 32


def seen_capacity(file_bytes: int) -> int:
    """Table slots for a file of ``file_bytes``: enough for its rows, at
    ROW_BYTES a row, to fit below the table's load limit. Growing the table
    reads every address back from its file (about a microsecond each, per
    doubling), which at a million rows costs as much as the adds themselves."""
    return min(max(int(file_bytes // ROW_BYTES / LOAD) + 1, SEEN_MIN), SEEN_MAX)


def open_csv(path: Path) -> TextIO:
    """A CSV file for reading; surrogateescape keeps a byte that is not
    UTF-8 in its row (:func:`bad_utf8` finds it), so the row is reported
    and the reader goes on, instead of the decoder failing a whole block."""
    return path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")


class RecipientFile:
    """A recipient CSV file; iterate it for :class:`Recipient` or :class:`Problem`."""

    def __init__(self, path: Path, *, email_column: str = "email") -> None:
        self.path = path
        self.email_column = email_column
        self.columns: list[str] = self._read_header()

    def _open(self) -> TextIO:
        return open_csv(self.path)

    def _read_header(self) -> list[str]:
        try:
            with self._open() as fh:
                header = next(csv.reader(fh), None)
        except FileNotFoundError:
            raise RecipientError("recipient file not found", file=str(self.path)) from None
        except (OSError, csv.Error) as exc:
            raise RecipientError(
                f"cannot read recipient file: {exc}", file=str(self.path)
            ) from None
        if not header:
            raise RecipientError(
                "recipient file is empty: no header row", file=str(self.path), line=1
            )
        cols = [c.strip() for c in header]
        if any(bad_utf8(c) for c in cols):
            raise RecipientError("header row is not valid UTF-8", file=str(self.path), line=1)
        if self.email_column not in cols:
            raise RecipientError(
                f"header row has no {self.email_column!r} column (columns: {', '.join(cols)})",
                file=str(self.path),
                line=1,
                field=self.email_column,
            )
        seen: set[str] = set()
        for c in cols:
            if not c:
                raise RecipientError(
                    "header row has an empty column name", file=str(self.path), line=1
                )
            if c in seen:
                raise RecipientError(
                    f"column {c!r} appears twice", file=str(self.path), line=1, field=c
                )
            seen.add(c)
        return cols

    def __iter__(self) -> Iterator[Recipient | Problem]:
        return self.rows()

    def rows(self, shard: tuple[int, int] = (0, 1)) -> Iterator[Recipient | Problem]:
        """Every row, as iterating does; with ``shard=(i, n)`` only those whose
        line number is i modulo n (good rows and problems alike)."""
        for got in self.runs(shard):
            if type(got) is list:
                yield from got
            else:
                yield got  # type: ignore[misc]

    def runs(
        self,
        shard: tuple[int, int] = (0, 1),
        limit: int = RUN_ROWS,
        settled: bytearray | None = None,
    ) -> Iterator[list[Recipient] | Problem]:
        """:meth:`rows` a run at a time: lists of at most ``limit`` good rows
        (never empty), each problem between them in its place. Rows set in
        ``settled`` (a resumed job's bitmap) are read, their addresses kept
        for the duplicate check, and left out.

        Runs of good rows are taken in one compiled call
        (:meth:`RowTaker.take_run`), not a turn of a Python loop a row; any
        other row comes back here, to the checks that say what is wrong
        with it.

        The other shards' rows are still read for the duplicate check, which
        spans the whole file (a worker process of a job must drop an address
        that another worker's row already took), but only as far as that
        check needs (:meth:`RowTaker.note`: no problem text, no variables,
        no :class:`Recipient`), unless its text does not encode: such a row
        goes through this shard's checks, its outcome dropped.
        """
        if limit < 1:
            raise ValueError(f"limit {limit}: want at least one row")
        index, count = shard
        cols = self.columns
        where_prefix = f"{self.path}:"
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0  # read as far as it goes; the table grows as needed
        email_column = self.email_column
        with self._open() as fh, SeenSet(capacity=seen_capacity(size)) as seen:
            add = seen.add
            taker = RowTaker(
                cols, email_column, add, parse_address, AddressError, Recipient, shard, settled
            )
            take_run = taker.take_run
            # The lines go to take_run, which splits most rows itself, and to
            # the csv reader for any other (Lines counts them all).
            lines = Lines(fh)
            reader = csv.reader(lines, strict=True)
            try:
                next(reader)
            except (StopIteration, csv.Error):
                return
            taker.start = lines.count + 1
            out: list[Recipient] = []
            while True:
                try:
                    stop = take_run(lines, reader, out, limit)
                except csv.Error as exc:
                    if out:
                        yield out
                        out = []
                    start = taker.start
                    if count == 1 or start % count == index:
                        yield Problem(
                            f"{where_prefix}{start}", f"malformed CSV: {exc}; row skipped"
                        )
                    taker.start = lines.count + 1
                    continue
                if stop == FULL:
                    yield out
                    out = []
                    continue
                if stop == END:
                    if out:
                        yield out
                    return
                fields, row = taker.fields, taker.row
                assert fields is not None
                got = self._slow_row(fields, row, add, where_prefix)
                if count > 1 and row % count != index:
                    # Another worker's row whose text does not encode: the
                    # same checks, kept only for the duplicate check (its
                    # address added when the row is good); not reported.
                    continue
                if isinstance(got, Recipient):
                    if not taker.is_settled(row):
                        out.append(got)
                        if len(out) >= limit:
                            yield out
                            out = []
                    continue
                if out:
                    yield out
                    out = []
                yield got

    def _slow_row(
        self, fields: list[str], row: int, add: Callable[[str], bool], where_prefix: str
    ) -> Recipient | Problem:
        """A row of this shard that :meth:`RowTaker.take` did not take: what
        is wrong with it, or its Recipient when nothing is."""
        cols = self.columns
        ncols = len(cols)
        email_column = self.email_column
        if len(fields) > ncols:
            return Problem(
                f"{where_prefix}{row}", f"{len(fields)} fields but {ncols} columns; row skipped"
            )
        if bad_utf8("".join(fields)):
            return Problem(f"{where_prefix}{row}", "row is not valid UTF-8; row skipped")
        email_at = cols.index(email_column)
        if len(fields) <= email_at:
            return Problem(f"{where_prefix}{row}", f"field {email_column}: missing; row skipped")
        try:
            addr = parse_address(fields[email_at])
        except AddressError as exc:
            return Problem(
                f"{where_prefix}{row}", f"field {email_column}: {exc.message}; row skipped"
            )
        email = str(addr)
        if not add(addr.key()):  # normalize_address(email)
            return Problem(
                f"{where_prefix}{row}", f"duplicate address {email}; row skipped", "warning"
            )
        # A short row lacks its last columns: those variables are absent,
        # which the templates report as missing (or render empty).
        values = dict(zip(cols, fields, strict=False))
        values[email_column] = email
        return Recipient(email=email, vars=values, row=row)

    def count_rows(self) -> int:
        """The rows iterating yields (good, bad or duplicate), for a progress total.

        Counted as the CSV reader reads them, so a quoted field spanning lines
        is one row, blank lines are none, and a last line without a newline
        counts: by line ends where no quote or lone CR can make a row other
        than a line (:func:`count_lines`), else with the reader itself.
        """
        n = count_lines(self.path)
        if n is not None:
            return n
        with self._open() as fh:
            return count_csv_rows(fh)


def count_csv_rows(fh: TextIO) -> int:
    """:meth:`RecipientFile.count_rows` by the CSV reader: data rows in ``fh``."""
    n = 0
    reader = csv.reader(fh, strict=True)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            n += 1  # reported as a malformed row
            continue
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            n += 1
    return max(n - 1, 0)  # the header row


#: A line end before a line that may be blank to the CSV reader (str.strip
#: leaves nothing): only ASCII whitespace and non-ASCII bytes up to its end.
_MAYBE_BLANK = re.compile(rb"\n(?=[\t\x0b\x0c\x1c-\x1f \x80-\xff]*\r?\n)")


def count_lines(path: Path, *, chunk: int = 1 << 20) -> int | None:
    """:func:`count_csv_rows` of ``path`` by its line ends, or None when the
    file holds a quote or a lone CR (the reader alone can tell its rows).

    Without those the reader's rows are its non-blank lines, so a count of
    ``\\n`` less the blank lines gives the same total at C speed, where the
    reader took about 0.7 us a row, serially, before any worker could start.
    """
    limit = csv.field_size_limit()
    n = 0
    rest = bytearray()  # grown in place: a line longer than a block costs no copies
    with path.open("rb") as fh:
        block = fh.read(max(chunk, len(codecs.BOM_UTF8)))
        if block.startswith(codecs.BOM_UTF8):  # utf-8-sig: not part of the first line
            block = block[len(codecs.BOM_UTF8) :] or fh.read(chunk)  # empty: the end
        while True:
            if block:
                rest += block
                end = rest.rfind(b"\n") + 1
                if not end:  # no whole line yet
                    block = fh.read(chunk)
                    continue
                part = bytes(rest[:end])
                del rest[:end]
            elif rest:
                part = bytes(rest + b"\n")  # a last line without its line end
                rest.clear()
            else:
                break
            if b'"' in part or (b"\r" in part and part.count(b"\r") != part.count(b"\r\n")):
                return None
            n += part.count(b"\n")
            for m in _MAYBE_BLANK.finditer(b"\n" + part):
                # The candidate starts at m.start() in part (one byte of prefix).
                line = part[m.start() : part.index(b"\n", m.start())]
                if len(line) > limit:
                    return None  # one field past the reader's limit: an error row
                if not line.decode("utf-8", "surrogateescape").strip():
                    n -= 1
            block = fh.read(chunk) if block else b""
    return max(n - 1, 0)  # the header row


#: What surrogateescape makes of bytes that are not UTF-8.
_UNDECODED = re.compile("[\udc80-\udcff]")


def bad_utf8(s: str) -> bool:
    if s.isascii():
        return False
    try:
        # Text that encodes holds no surrogate at all; encoding is one C
        # pass, where the search walked every character of a row in its
        # regex engine (three times the time, on every non-ASCII row).
        s.encode("utf-8")
    except UnicodeEncodeError:
        return _UNDECODED.search(s) is not None
    return False
