"""A row whose record cannot be opened is still reported to the app.

A job is enqueued, and a row beyond the file's is given a ``delivered``
state whose record's sealed bytes were altered. ``Engine(redis=URL)``
follows the job while a real worker sends the rest: every row's result
reaches the handle and ``on_result``, the unreadable one as a ``failed``
result of category ``unreadable`` (counted, so reported: nothing is
counted and never said)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mailsflux import Engine
from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.worker import enqueue
from mailsflux.spool import Record
from mailsflux.spool.redis_spool import RedisSpool
from mailsflux.types import DeliveryResult
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 30
STRAY = 500


def _damage(redis_url: str, prefix: str, job: Path) -> None:
    with RedisSpool(redis_url, prefix=prefix) as spool:
        info, _ = enqueue(spool, load_job(job), on_problem=lambda p: None)
        rec = Record(row=STRAY, state="delivered", recipient="x@example.com", updated=time.time())
        spool.store(info.id, [rec])
        key = spool.key(info.id, "rec")
        blob = spool.client.hget(key, STRAY)
        spool.client.hset(key, STRAY, blob[:-1] + bytes([blob[-1] ^ 1]))


def test_an_unreadable_record_comes_back_as_an_error_result(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    called: list[DeliveryResult] = []

    async def go() -> tuple[list[DeliveryResult], object]:
        async with Engine(redis=redis_url, redis_prefix=prefix, on_result=called.append) as e:
            handle = await e.submit(job)
            got = [r async for r in handle]
            return got, await handle.wait()

    rows = people(ROWS)
    with SMTPServer(RecordingHandler()) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        _damage(redis_url, prefix, job)
        with Workers(1, redis_url, prefix, tmp_path) as workers:
            got, summary = asyncio.run(go())
        log = workers.log(0)

    by_row = {r.row: r for r in got}
    assert sorted(by_row) == [*range(2, ROWS + 2), STRAY], log
    bad = by_row[STRAY]
    assert (bad.status, bad.category, bad.recipient) == ("failed", "unreadable", "")
    assert "does not authenticate" in bad.reply
    assert all(by_row[r].status == "delivered" for r in range(2, ROWS + 2))
    assert sorted(r.row for r in called) == sorted(by_row)
    assert summary.total == ROWS + 1  # type: ignore[attr-defined]
