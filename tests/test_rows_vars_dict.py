"""A taken row's variables (``Recipient.vars``) are the dict the reader has
always made, ``{column: field}`` filled in column order, whether the row is
full (copied from one dict of every column, then filled) or short (only its
own columns): the same keys in the same order, a repeated column name's
last field as its value, and every row's dict its own."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.compose import parse_address
from mailsflux.errors import AddressError
from mailsflux.jobs._rows import RowTaker
from mailsflux.jobs.seen import SeenSet
from mailsflux.types import Recipient


def _filled(cols: tuple[str, ...], fields: list[str], email: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for col, field in zip(cols, fields, strict=False):
        values[col] = field
    values["email"] = email
    return values


_COLS = st.lists(st.sampled_from(["name", "plan", "city", "a", "b"]), max_size=5).flatmap(
    lambda rest: st.permutations(["email", *rest]).map(tuple)
)


@settings(max_examples=300, deadline=None)
@given(_COLS, st.lists(st.text(alphabet="xyzé ", max_size=4), min_size=8, max_size=8), st.data())
def test_vars_are_the_rows_columns_in_order(
    cols: tuple[str, ...], words: list[str], data: st.DataObject
) -> None:
    at = cols.index("email")
    with SeenSet(capacity=64) as table:
        taker = RowTaker(cols, "email", table.add, parse_address, AddressError, Recipient)
        taken: list[tuple[Recipient, dict[str, str]]] = []
        for row in range(6):
            n = data.draw(st.integers(at + 1, len(cols)), label="fields")
            fields = [words[(row + i) % len(words)] for i in range(n)]
            fields[at] = f"u{row}@example.com"
            got = taker.take(fields, row + 2)
            assert got is not None
            want = _filled(cols, fields, fields[at])
            assert type(got.vars) is dict
            assert got.vars == want
            assert list(got.vars) == list(want)  # the keys' order too
            taken.append((got, want))
        # Each row's dict is its own: changing one changes no other, nor
        # what later rows get.
        taken[0][0].vars["email"] = "changed"
        taken[0][0].vars["added"] = "x"
        for got, want in taken[1:]:
            assert got.vars == want
        fields = [words[i % len(words)] for i in range(len(cols))]
        fields[at] = "last@example.com"
        got = taker.take(fields, 99)
        assert got is not None
        assert got.vars == _filled(cols, fields, "last@example.com")
