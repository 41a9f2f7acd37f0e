"""The duplicate check's table is sized from the recipient file's length, so
reading a big file never doubles it (each doubling reads every address back
from its encrypted file), and duplicates are still found across the whole
file and across shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.jobs import recipients
from mailsflux.jobs.recipients import SEEN_MAX, SEEN_MIN, RecipientFile, seen_capacity
from mailsflux.jobs.seen import LOAD, SeenSet
from mailsflux.types import Problem, Recipient


def _count_growth(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every SeenSet at each doubling of its table, from now on."""
    grown: list[int] = []
    real_grow = SeenSet._grow

    def counting_grow(self: SeenSet) -> None:
        grown.append(len(self))
        real_grow(self)

    monkeypatch.setattr(SeenSet, "_grow", counting_grow)
    return grown


def test_capacity_follows_the_file_length_within_bounds() -> None:
    assert seen_capacity(0) == SEEN_MIN
    assert seen_capacity(1_000) == SEEN_MIN
    assert seen_capacity(10**12) == SEEN_MAX
    mid = 1_200_000  # 75,000 rows of 16 bytes
    cap = seen_capacity(mid)
    assert SEEN_MIN < cap < SEEN_MAX
    assert cap * LOAD >= mid // recipients.ROW_BYTES


@pytest.mark.parametrize("shard", [(0, 1), (1, 2)])
def test_a_big_file_is_read_without_growing_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shard: tuple[int, int]
) -> None:
    rows = 120_000  # past what the smallest table holds (65,536 * 0.7)
    path = tmp_path / "r.csv"
    with path.open("w") as fh:
        fh.write("email,name\n")
        for i in range(rows):
            fh.write(f"u{i}@example.com,N\n")
        fh.write("U7@Example.COM,again\n")  # a duplicate of row 9, spelled otherwise
    grown = _count_growth(monkeypatch)
    items = list(RecipientFile(path).rows(shard))
    assert grown == []
    good = [i for i in items if isinstance(i, Recipient)]
    dupes = [i for i in items if isinstance(i, Problem) and "duplicate" in i.message]
    last = rows + 2  # the duplicate's line
    if shard == (0, 1) or last % 2 == shard[0]:
        assert [d.where for d in dupes] == [f"{path}:{last}"]
    assert len(good) == (rows if shard == (0, 1) else rows // 2)


def test_without_a_size_the_table_grows_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file whose length cannot be read starts at the smallest table and
    # grows as it fills, losing no address.
    path = tmp_path / "r.csv"
    path.write_text(
        "email\n" + "".join(f"u{i}@example.com\n" for i in range(50_000)) + "u3@example.com\n"
    )
    rf = RecipientFile(path)
    real_stat = Path.stat

    def failing_stat(self: Path, **kw: bool) -> object:
        if self == path:
            raise PermissionError("no stat")
        return real_stat(self, **kw)

    monkeypatch.setattr(Path, "stat", failing_stat)
    grown = _count_growth(monkeypatch)
    items = list(rf.rows())
    assert grown == [int(SEEN_MIN * LOAD) + 1]
    assert sum(isinstance(i, Recipient) for i in items) == 50_000
    assert [i.where for i in items if isinstance(i, Problem)] == [f"{path}:50002"]
