"""``send --redis`` puts a job's rows into Redis 64 to a stream entry, and
the last 512 rows of a bigger job in entries of 16: a worker holds up to
four entries, and at the end of a job the other workers, with nothing left
to take, would wait for up to 256 rows it holds rather than 64. Every row
is put in once, in order; a job of 512 rows or fewer keeps entries of 64."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.worker import AHEAD, BATCH, enqueue
from mailsflux.spool.redis_spool import RedisSpool
from tests._jobs import make_job, people

pytestmark = pytest.mark.redis

ROWS = 1000


def test_last_rows_go_in_smaller_entries(tmp_path: Path, redis_url: str, prefix: str) -> None:
    job = make_job(tmp_path, people(ROWS), algorithm="ed25519-sha256")
    with RedisSpool(redis_url, prefix=prefix) as spool:
        info, total = enqueue(spool, load_job(job), on_problem=lambda p: None)
        entries = spool.client.xrange(spool.key(info.id, "q"))
    assert total == ROWS
    sizes = [int(fields[b"n"]) for _, fields in entries]
    firsts = [int(fields[b"first"]) for _, fields in entries]
    assert sum(sizes) == ROWS
    # Rows 2 .. ROWS + 1 (line 1 is the header), each entry after the last.
    assert firsts == [2 + sum(sizes[:i]) for i in range(len(sizes))]
    tail = 2 * AHEAD * BATCH
    big = [n for n, first in zip(sizes, firsts, strict=True) if ROWS + 1 - first >= tail]
    small = sizes[len(big) :]
    assert big and set(big) == {BATCH}
    assert small and max(small) == BATCH // 4
    assert sum(small) <= tail


def test_small_job_keeps_whole_entries(tmp_path: Path, redis_url: str, prefix: str) -> None:
    job = make_job(tmp_path, people(150), algorithm="ed25519-sha256")
    with RedisSpool(redis_url, prefix=prefix) as spool:
        info, _ = enqueue(spool, load_job(job), on_problem=lambda p: None)
        entries = spool.client.xrange(spool.key(info.id, "q"))
    assert [int(fields[b"n"]) for _, fields in entries] == [BATCH, BATCH, 150 - 2 * BATCH]
