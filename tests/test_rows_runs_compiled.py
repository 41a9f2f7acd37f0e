"""The reader's rows a run at a time, taken in C, are the rows one at a time (issue 17).

:meth:`RecipientFile.runs` takes runs of good rows in one compiled call
(``RowTaker.take_run``) and hands every other row back to the Python checks.
Random files mixing good rows, duplicates in another case, bad addresses,
long and short rows, blank lines, malformed CSV, undecodable bytes and quoted
line breaks give, for every shard and run length, the same rows and problems
in the same order as the reader as it was (kept below, one row at a time);
a resumed job's settled rows are left out but still count as duplicates.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux.compose import parse_address
from mailsflux.errors import AddressError
from mailsflux.jobs._rows import END, FULL, SLOW, Lines, RowTaker
from mailsflux.jobs.recipients import RecipientFile, bad_utf8
from mailsflux.types import Problem, Recipient


class _Seen:
    """The duplicate check as a plain set: add(key) is True when key is new."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def add(self, key: str) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


def _reference(rf: RecipientFile, shard: tuple[int, int]) -> Iterator[Recipient | Problem]:
    """The reader as it was before runs: one row at a time, in Python."""
    index, count = shard
    cols = rf.columns
    ncols = len(cols)
    email_at = cols.index(rf.email_column)
    where_prefix = f"{rf.path}:"
    add = _Seen().add

    with rf._open() as fh:
        reader = csv.reader(fh, strict=True)
        try:
            next(reader)
        except (StopIteration, csv.Error):
            return
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if count == 1 or start % count == index:
                    yield Problem(f"{where_prefix}{start}", f"malformed CSV: {exc}; row skipped")
                start = reader.line_num + 1
                continue
            row = start
            start = reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            mine = count == 1 or row % count == index
            if len(fields) > ncols:
                if mine:
                    yield Problem(
                        f"{where_prefix}{row}",
                        f"{len(fields)} fields but {ncols} columns; row skipped",
                    )
                continue
            if bad_utf8("".join(fields)):
                if mine:
                    yield Problem(f"{where_prefix}{row}", "row is not valid UTF-8; row skipped")
                continue
            if len(fields) <= email_at:
                if mine:
                    yield Problem(
                        f"{where_prefix}{row}", f"field {rf.email_column}: missing; row skipped"
                    )
                continue
            try:
                addr = parse_address(fields[email_at])
            except AddressError as exc:
                if mine:
                    yield Problem(
                        f"{where_prefix}{row}",
                        f"field {rf.email_column}: {exc.message}; row skipped",
                    )
                continue
            email = str(addr)
            if not add(addr.key()):
                if mine:
                    yield Problem(
                        f"{where_prefix}{row}", f"duplicate address {email}; row skipped", "warning"
                    )
                continue
            if mine:
                values = dict(zip(cols, fields, strict=False))
                values[rf.email_column] = email
                yield Recipient(email=email, vars=values, row=row)


def _line(rng: random.Random, i: int) -> bytes:
    kind = rng.randrange(20)
    addr = f"user{rng.randrange(40)}@example.{rng.choice(['com', 'org'])}"
    if kind == 0:
        return f"{addr.upper()},Name {i},Pro\n".encode()  # a duplicate in another case
    if kind == 1:
        return f"not-an-address-{i},X,Team\n".encode()
    if kind == 2:
        return f"{addr},a,b,c,d\n".encode()  # more fields than columns
    if kind == 3:
        return f"{addr}\n".encode()  # a short row: its variables absent
    if kind == 4:
        return rng.choice([b"\n", b"   \n", b"\t\n"])  # blank to the reader
    if kind == 5:
        return f'{addr},"bad"quote,Pro\n'.encode()  # malformed CSV (strict)
    if kind == 6:
        return addr.encode() + b",N\xff\xfe,Pro\n"  # not UTF-8
    if kind == 7:
        return f'{addr},"two\nlines",Pro\n'.encode()  # a row over two lines
    if kind == 8:
        return b",empty address,Pro\n"
    if kind == 9:
        return f"z\u00f6e{i}@b\u00fccher.example,Zo\u00eb,Team\n".encode()
    # Line ends and characters the reader's own split must leave to the
    # csv module, or split as it does.
    if kind == 14:
        return f"u{i}.{addr},CR LF {i},Team\r\n".encode()
    if kind == 15:
        return f"u{i}.{addr},lone CR {i},Team\r".encode()
    if kind == 16:
        return f"u{i}.{addr},N\x00UL,Team\n".encode()
    if kind == 17:
        return f"u{i}.{addr},\u4e2d\U0001f600 {i},\n".encode()  # UCS2 and UCS4, a last empty field
    if kind == 18:
        return f"u{i}.{addr},{'w' * rng.choice([10, 60, 99, 100, 101, 130])},Team\n".encode()
    if kind == 19:
        return f" u{i}.{addr} , spaced ,Team\n".encode()
    return f"u{i}.{addr},Name {i},Team\n".encode()


def _file(tmp_path: Path, seed: int, n: int) -> RecipientFile:
    rng = random.Random(seed)
    path = tmp_path / f"r{seed}.csv"
    body = b"".join(_line(rng, i) for i in range(n))
    if seed % 2:
        body = body.rstrip(b"\r\n")  # the last line without its end
    path.write_bytes(b"email,name,plan\n" + body)
    return RecipientFile(path)


def _moved(line: bytes, email_at: int) -> bytes:
    """``line`` with its first field (the address) moved to ``email_at``."""
    if email_at == 0 or b'"' in line:
        return line
    body = line.rstrip(b"\r\n")
    fields = body.split(b",")
    first = fields.pop(0)
    fields.insert(min(email_at, len(fields)), first)
    return b",".join(fields) + line[len(body) :]


@pytest.mark.parametrize("email_at", [1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_the_address_column_anywhere(tmp_path: Path, seed: int, email_at: int) -> None:
    # Another worker's row is noted from its line where it can be: the
    # address cut out wherever its column is (first, between, last).
    rng = random.Random(seed)
    header = [b"name", b"plan"]
    header.insert(email_at, b"email")
    path = tmp_path / f"m{seed}.csv"
    body = b"".join(_moved(_line(rng, i), email_at) for i in range(300))
    path.write_bytes(b",".join(header) + b"\n" + body)
    rf = RecipientFile(path)
    for shard in SHARDS:
        want = list(_reference(rf, shard))
        assert any(isinstance(w, Recipient) for w in want)
        assert list(rf.rows(shard)) == want, shard


@pytest.fixture(autouse=True)
def _small_field_limit() -> Iterator[None]:
    # Fields near the csv module's field size limit (kind 18's, of 60 to 130
    # characters) read as the module reads them; the other lines are shorter.
    old = csv.field_size_limit(100)
    yield
    csv.field_size_limit(old)


def _bit(bits: bytearray, row: int) -> bool:
    return bool(bits[row >> 3] >> (row & 7) & 1)


SHARDS = [(0, 1), (0, 2), (1, 2), (0, 3), (2, 3)]


@pytest.mark.parametrize("seed", range(12))
def test_runs_give_the_rows_in_order_for_every_shard_and_length(tmp_path: Path, seed: int) -> None:
    rf = _file(tmp_path, seed, 300)
    for shard in SHARDS:
        want = list(_reference(rf, shard))
        assert any(isinstance(w, Problem) for w in want)
        assert any(isinstance(w, Recipient) for w in want)
        assert list(rf.rows(shard)) == want, shard
        for limit in (1, 2, 7, 32):
            flat: list[Recipient | Problem] = []
            for got in rf.runs(shard, limit):
                if isinstance(got, list):
                    assert 1 <= len(got) <= limit
                    assert all(type(r) is Recipient for r in got)
                    flat += got
                else:
                    assert type(got) is Problem
                    flat.append(got)
            assert flat == want, (shard, limit)


@pytest.mark.parametrize("seed", range(4))
def test_settled_rows_are_left_out_but_still_count_as_duplicates(tmp_path: Path, seed: int) -> None:
    rf = _file(tmp_path, 100 + seed, 300)
    rng = random.Random(seed)
    settled = bytearray(rng.randbytes(20))  # rows 0..159; later rows unset
    for shard in SHARDS:
        want = [
            w
            for w in _reference(rf, shard)
            if not (isinstance(w, Recipient) and w.row < 160 and _bit(settled, w.row))
        ]
        flat: list[Recipient | Problem] = []
        for got in rf.runs(shard, 5, settled):
            flat += got if isinstance(got, list) else [got]
        assert flat == want, shard


def test_a_run_stops_where_the_python_checks_must_look() -> None:
    add = _Seen().add

    lines = [
        "email,name",
        "a@x.example,A",
        "",
        "b@x.example,B",
        "a@x.example,again",
        "c@x.example,C",
    ]
    source = Lines(lines)
    reader = csv.reader(source, strict=True)
    next(reader)
    taker = RowTaker(["email", "name"], "email", add, parse_address, AddressError, Recipient)
    taker.start = 2
    out: list[Recipient] = []
    assert taker.take_run(source, reader, out, 10) == SLOW  # the duplicate
    assert [r.email for r in out] == ["a@x.example", "b@x.example"]
    assert (taker.fields, taker.row) == (["a@x.example", "again"], 5)
    assert taker.start == 6
    assert taker.take_run(source, reader, out, 3) == FULL
    assert [r.row for r in out] == [2, 4, 6]
    assert taker.take_run(source, reader, out, 10) == END
    assert source.count == 6
    with pytest.raises(ValueError):
        taker.take_run(source, reader, out, 0)
    with pytest.raises(ValueError):
        RowTaker(["email"], "email", add, parse_address, AddressError, Recipient, (2, 2))


def test_a_malformed_row_leaves_start_on_its_line() -> None:
    lines = ["email", "a@x.example", '"b@x.example"x', "c@x.example"]
    source = Lines(lines)
    reader = csv.reader(source, strict=True)
    next(reader)
    taker = RowTaker(["email"], "email", lambda k: True, parse_address, AddressError, Recipient)
    taker.start = 2
    out: list[Recipient] = []
    with pytest.raises(csv.Error):
        taker.take_run(source, reader, out, 10)
    assert [r.row for r in out] == [2]
    assert taker.start == 3
    assert source.count == 3  # the malformed line read once, by the csv reader
    taker.start = source.count + 1  # as the caller does
    assert taker.take_run(source, reader, out, 10) == END
    assert [r.row for r in out] == [2, 4]
