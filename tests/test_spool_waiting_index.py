"""A job's waiting messages are found through their index, not by reading
every row the job ever settled: what ``next_due``, ``make_due``, ``drop``,
``release_claims`` and ``begin_job --restart``'s check cost must not grow with
the job's delivered rows.

Measured in SQLite's own virtual-machine steps (a progress handler called
every step), which depend on the query plan and the rows it visits, not on
the machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import JobInfo, Record, SpoolKeys, SQLiteSpool
from tests._spool_contract import msg


def _spool(path: Path, settled: int) -> SQLiteSpool:
    """A spool whose job has ``settled`` delivered rows and three waiting ones
    (two deferred, one pending)."""
    spool = SQLiteSpool(path, keys=SpoolKeys.generate())
    spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint="f"))
    now = time.time()
    done = [
        Record(row=r, state="delivered", recipient=f"p{r}@example.org", domain="example.org")
        for r in range(1, settled + 1)
    ]
    waiting = [
        Record(row=settled + 1, state="deferred", domain="example.org", next_at=now + 60,
               message=msg(settled + 1)),
        Record(row=settled + 2, state="deferred", domain="example.org", next_at=now + 30,
               message=msg(settled + 2)),
        Record(row=settled + 3, state="pending", domain="example.org", next_at=now + 90,
               message=msg(settled + 3)),
    ]  # fmt: skip
    for i in range(0, len(done), 5000):
        spool.store("job-1", done[i : i + 5000])
    spool.store("job-1", waiting)
    return spool


def _steps(spool: SQLiteSpool, call: Callable[[SQLiteSpool], object]) -> tuple[int, object]:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    spool._db.set_progress_handler(count, 1)
    try:
        got = call(spool)
    finally:
        spool._db.set_progress_handler(None, 1)
    return steps, got


CALLS: dict[str, Callable[[SQLiteSpool], object]] = {
    "next_due(job)": lambda s: s.next_due("job-1") is not None,
    "next_due()": lambda s: s.next_due() is not None,
    "make_due(job)": lambda s: s.make_due(job="job-1"),
    "make_due()": lambda s: s.make_due(),
    "release_claims": lambda s: s.release_claims("job-1"),
    "drop": lambda s: s.drop(job="job-1"),
    "begin_job --restart refused": lambda s: _restart_refused(s),
}


def _restart_refused(spool: SQLiteSpool) -> str:
    """Why ``--restart`` is refused: three rows still wait."""
    spool.end_job("job-1", "interrupted")
    info = JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint="f")
    with pytest.raises(SpoolError) as exc:
        spool.begin_job(info, restart=True)
    return str(exc.value)


@pytest.mark.parametrize("name", list(CALLS))
def test_cost_does_not_grow_with_settled_rows(tmp_path: Path, name: str) -> None:
    small = _spool(tmp_path / "small", 20)
    big = _spool(tmp_path / "big", 20_000)
    few, got_small = _steps(small, CALLS[name])
    many, got_big = _steps(big, CALLS[name])
    assert got_small == got_big  # the same answer: two deferred, three waiting
    # A scan of the job's rows takes several steps a row (60,000 and more here).
    assert many < few + 200, (name, few, many)


def test_the_answers_are_the_waiting_rows(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "s", 50)
    due = spool.next_due("job-1")
    assert due is not None and due > time.time() + 20  # the earlier deferral: now + 30
    assert spool.next_due("job-2") is None
    assert spool.make_due(job="job-1") == 2  # the deferred ones, not the pending one
    due = spool.next_due("job-1")
    assert due is not None and due <= time.time()
    assert spool.counts("job-1") == {"delivered": 50, "deferred": 2, "pending": 1}
    assert spool.drop(job="job-1") == 3
    assert spool.counts("job-1") == {"delivered": 50, "failed": 3}
    assert spool.next_due("job-1") is None


def test_restart_still_refuses_a_job_with_waiting_rows(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "s", 2_000)
    spool.end_job("job-1", "interrupted")
    info = JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint="f")
    with pytest.raises(SpoolError, match="still has 3 deferred messages"):
        spool.begin_job(info, restart=True)
    assert spool.drop(job="job-1") == 3
    spool.begin_job(info, restart=True)  # nothing waits now: forgotten and begun again
    assert spool.counts("job-1") == {}
