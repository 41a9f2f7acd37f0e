"""The compiled good-row path of the recipient reader (``RowTaker.take``)
takes exactly the rows the reader's own checks call good, with the same
Recipient, and leaves every other row untouched for those checks to report;
``RowTaker.note`` adds another worker's row's address to the duplicate check
exactly when the reader would.

Rows are drawn at random (fields of any text, undecodable bytes as
surrogateescape makes them, short and long rows, addresses repeated in other
cases) and go one after another through one real duplicate set, as a file's
rows do; the reference is the reader's checks, made of its public parts.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose import parse_address
from mailsflux.errors import AddressError
from mailsflux.jobs._rows import RowTaker
from mailsflux.jobs.recipients import bad_utf8
from mailsflux.jobs.seen import SeenSet
from mailsflux.types import Recipient

COLS = ("name", "email", "plan")  # the address not first: short rows can lack it
ADDRESSES = st.sampled_from(
    [
        "ada@example.com",
        "ADA@Example.COM",
        "zoë@bücher.example",
        "ZOË@BÜCHER.example",
        "bad",
        "a@b\r\nBcc: c@d",
        "",
        "ada\udcff@example.com",
    ]
)
FIELDS = st.one_of(
    st.sampled_from(["", "Ann", "Zoë", "\udcff", "x\udce9y", "\ud800", "a,b"]),
    st.text(max_size=12),
)
ROWS = st.one_of(
    st.builds(lambda n, e, p: [n, e, p], FIELDS, ADDRESSES, FIELDS),
    st.builds(lambda n, e: [n, e], FIELDS, ADDRESSES),  # short: no plan
    st.builds(lambda n: [n], FIELDS),  # shorter: no address
    st.builds(lambda n, e, p, x: [n, e, p, x], FIELDS, ADDRESSES, FIELDS, FIELDS),  # too long
)


def reference(fields: list[str], row: int, seen: set[str]) -> Recipient | None:
    """What the reader's checks make of a row: its Recipient, or None (a problem)."""
    if len(fields) > len(COLS) or bad_utf8("".join(fields)) or len(fields) <= 1:
        return None
    try:
        addr = parse_address(fields[1])
    except AddressError:
        return None
    if addr.key() in seen:
        return None
    seen.add(addr.key())
    values = dict(zip(COLS, fields, strict=False))
    values["email"] = str(addr)
    return Recipient(email=str(addr), vars=values, row=row)


def _unencodable(fields: list[str]) -> bool:
    try:
        "".join(fields).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def reference_note(fields: list[str], seen: set[str]) -> None:
    """What the reader does with another worker's row: its address enters
    the duplicate check when the row is good."""
    if len(fields) > len(COLS) or bad_utf8("".join(fields)) or len(fields) <= 1:
        return
    try:
        addr = parse_address(fields[1])
    except AddressError:
        return
    seen.add(addr.key())


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(ROWS, st.booleans()), max_size=10))
@example(rows=[(["A", "ada@example.com", "p"], False), (["B", "ADA@example.com", "q"], False)])
@example(rows=[(["A", "ada@example.com"], False), (["A", "ada@example.com", "p", "x"], False)])
@example(rows=[(["A", "ada@example.com"], True), (["B", "ADA@example.com", "q"], False)])
def test_take_is_the_readers_checks(rows: list[tuple[list[str], bool]]) -> None:
    # Rows in order through one duplicate set, as in a worker: its own rows
    # taken, another worker's (True) only noted for the duplicate check.
    seen: set[str] = set()
    with SeenSet(capacity=64) as table:
        taker = RowTaker(COLS, "email", table.add, parse_address, AddressError, Recipient)
        take = taker.take
        for row, (fields, others) in enumerate(rows, 2):
            before = list(fields)
            if others:
                had = set(seen)
                reference_note(fields, seen)
                if not taker.note(fields):
                    # Left to the reader's checks: text that does not encode.
                    assert _unencodable(fields)
                    for key in seen - had:
                        assert table.add(key)
                assert fields == before
                for key in seen:
                    assert not table.add(key)
                continue
            want = reference(fields, row, seen)
            got = take(fields, row)
            assert fields == before
            if got is None and want is not None:
                # Refused only for text that does not encode: the reader's
                # own check takes it (a lone surrogate that no undecodable
                # byte made) and adds its address, as the reference did.
                assert _unencodable(fields)
                assert table.add(parse_address(fields[1]).key())
                continue
            assert got == want
            # The duplicate set holds what the reference's holds.
            for key in seen:
                assert not table.add(key)
