"""The reader's de-duplication set: exact, a few bytes per address, and its
addresses on disk only encrypted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


PROBE = """
import os, sys
from mailsflux.jobs.seen import SeenSet
def files():
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the directory listing's own descriptor
    return found
before = files()
seen = SeenSet(capacity=16)
for i in range(100_000):  # some 3 MB: flushed, and the table grown from the file
    seen.add(f"person.{i}@plaintext.example")
assert not seen.add("person.7@plaintext.example") and seen.add("person.7@other.example")
(fd, path), = [(f, p) for f, p in files().items() if f not in before]
with open(f"/proc/self/fd/{fd}", "rb") as fh:
    data = fh.read()
print(path)
print(len(data), data.count(b"plaintext.example"), data.count(b"person."))
"""


def test_the_temp_file_is_in_tmpdir_and_holds_no_plain_address(tmp_path: Path) -> None:
    """The addresses a job reads go to disk encrypted, in the directory the
    operator names with TMPDIR, never in plain text."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(f"{tmp_path}/"), out  # unlinked: "... (deleted)" or O_TMPFILE
    size, domains, people = map(int, out[1].split())
    assert size > 2_000_000  # the addresses are there...
    assert (domains, people) == (0, 0)  # ...but not readable
