"""The reader's de-duplication set: exact, and a few bytes per address."""

from __future__ import annotations

from mailsflux.jobs.seen import SeenSet

ROWS = 200_000


def test_200k_addresses_in_under_24_bytes_each() -> None:
    with SeenSet() as seen:
        for i in range(ROWS):
            assert seen.add(f"user{i}@example.com")
        assert len(seen) == ROWS
        assert seen.nbytes / ROWS < 24
        # Every one is found again, early and late ones alike (from the file).
        assert not seen.add("user0@example.com")
        assert not seen.add(f"user{ROWS - 1}@example.com")
        assert not seen.add("user777@example.com") and seen.add("user777@example.org")


def test_colliding_hashes_never_merge_distinct_addresses() -> None:
    # Every address hashes alike: only the full comparison tells them apart.
    with SeenSet(hash=lambda _: 0xDEADBEEF) as seen:
        addrs = [f"p{i}@example.com" for i in range(500)]
        assert all(seen.add(a) for a in addrs)
        assert not any(seen.add(a) for a in addrs)
        assert len(seen) == 500


def test_non_ascii_and_long_addresses_round_trip() -> None:
    with SeenSet(capacity=16) as seen:
        long = "x" * 200 + "@" + "ä" * 300 + ".example"
        for a in ("zoë@bücher.example", long, "a@b.example"):
            assert seen.add(a)
        for _ in range(100):  # grow the table past the first size
            seen.add(f"fill{_}@example.com")
        assert not seen.add(long) and not seen.add("zoë@bücher.example")
