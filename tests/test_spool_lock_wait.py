"""The embedded spool meeting another process on its database: a write
waits for the write lock and lands whole once the other process lets go;
past ``lock_wait`` the spool says so and writes nothing.

The other process is a real one (a Python child with its own SQLite
connection to ``spool.db``), holding the lock as a worker does mid-commit.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import JobInfo, Record, SQLiteSpool

#: Takes the write lock, writes a job row of its own, says "held", and
#: commits when a line comes on stdin.
_HOLDER = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO jobs VALUES ('holder', x'00')")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
db.close()
print("let go", flush=True)
"""


class _Holder:
    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def let_go(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "let go\n"
        assert self.proc.wait(timeout=30) == 0

    def let_go_later(self, after: float) -> threading.Timer:
        """Lets go ``after`` seconds from now, from a thread (this one will
        be waiting in the spool); :meth:`check` says how that went."""
        self.failed: BaseException | None = None

        def go() -> None:
            try:
                self.let_go()
            except BaseException as exc:  # re-raised by check(), in the test's thread
                self.failed = exc

        timer = threading.Timer(after, go)
        timer.start()
        return timer

    def check(self, timer: threading.Timer) -> None:
        timer.join(timeout=30)
        assert not timer.is_alive()
        if self.failed is not None:
            raise self.failed


def _spool(tmp_path: Path, lock_wait: float = 60.0) -> SQLiteSpool:
    spool = SQLiteSpool(tmp_path / "s", lock_wait=lock_wait)
    spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint="fp"))
    return spool


def _records(rows: range) -> list[Record]:
    return [
        Record(row=r, state="delivered", recipient=f"p{r}@example.org", domain="example.org")
        for r in rows
    ]


def test_a_write_waits_for_another_process_and_lands_after_it(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    # In WAL mode the spool waits itself (SQLite's handler would sleep 1 ms
    # and more between tries): SQLite is told not to wait.
    assert spool._db.execute("PRAGMA busy_timeout").fetchone() == (0,)
    holder = _Holder(spool.path)
    timer = holder.let_go_later(0.3)
    spool.store("job-1", _records(range(2, 34)))
    # The write lock came only with the holder's commit: its row is there
    # the moment the store returns.
    assert spool._q("SELECT 1 FROM jobs WHERE id = 'holder'") == [(1,)]
    holder.check(timer)
    assert spool.counts("job-1") == {"delivered": 32}
    assert [r.recipient for r in spool.records("job-1")] == [
        f"p{r}@example.org" for r in range(2, 34)
    ]


def test_a_write_past_lock_wait_fails_whole_and_the_next_one_lands(tmp_path: Path) -> None:
    spool = _spool(tmp_path, lock_wait=0.2)
    holder = _Holder(spool.path)
    try:
        with pytest.raises(SpoolError) as err:
            spool.store("job-1", _records(range(2, 10)))
        assert "database is locked" in str(err.value)
        assert err.value.file == str(spool.path)
    finally:
        holder.let_go()
    assert spool.counts("job-1") == {}
    spool.store("job-1", _records(range(2, 10)))
    assert spool.counts("job-1") == {"delivered": 8}
