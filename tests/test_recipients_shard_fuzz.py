"""Reading one worker's share of a recipient file (``RecipientFile.rows(shard)``)
gives exactly the rows and problems of the whole read that fall in that
share, in order: the rows of the other workers, read only for the duplicate
check, leave that check as the whole read leaves it (a duplicate of another
worker's row is still dropped, a bad row of another worker takes no
address)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailsflux.jobs.recipients import RecipientFile
from mailsflux.types import Problem, Recipient

ADDRESSES = ["a@x.example", "A@X.example", "b@x.example", "a@X.EXAMPLE", "bad", "é@x.example"]
FIELD = st.sampled_from(["", "n", "Ann", " ", '"q,"', '"two\nlines"', "\xff", "x,y"])


def _line(email: str, name: str, extra: bool) -> str:
    return f"{email},{name}" + (",z" if extra else "")


LINES = st.one_of(
    st.builds(_line, st.sampled_from(ADDRESSES), FIELD, st.booleans()),
    st.sampled_from(["", "   ", 'a@x.example,"unclosed', "only-one-field", ","]),
)


def _row(item: Recipient | Problem) -> int:
    if isinstance(item, Recipient):
        return item.row
    return int(item.where.rpartition(":")[2])


def _check(tmp: Path, lines: list[str], count: int) -> None:
    path = tmp / "r.csv"
    data = ("email,name\n" + "\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    path.write_bytes(data.replace("\xff".encode(), b"\xff"))
    rf = RecipientFile(path)
    whole = list(rf)
    for index in range(count):
        share = list(rf.rows((index, count)))
        assert share == [x for x in whole if _row(x) % count == index]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(LINES, max_size=12), count=st.integers(1, 4))
@example(lines=["a@x.example,n", "a@X.EXAMPLE,n"], count=2)  # a duplicate across shares
@example(lines=["a@x.example,n,z", "a@x.example,n"], count=2)  # a bad row takes no address
def test_a_share_is_the_whole_read_filtered(tmp_path: Path, lines: list[str], count: int) -> None:
    _check(tmp_path, lines, count)
