"""``Engine(..., redis=URL).submit(job_file)``: the job goes to Redis, workers send it.

The engine enqueues the job's rows as ``mailsflux send JOB --redis URL``
does (:func:`mailsflux.jobs.worker.enqueue`) and its :class:`JobHandle`
follows the job there: ``counts`` at every poll, each row's final result as
it is recorded (read back from the spool, opened with the shared key file),
so ``async for result in handle``, ``Engine.results()``/``events()`` and
``on_result`` see what they would for a local job. ``cancel()`` stops the
following, not the workers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.prepared import make_signer
from mailsflux.jobs.rows import ProblemSink
from mailsflux.jobs.worker import end_state, enqueue, follow, result_of
from mailsflux.spool import Record
from mailsflux.spool.redis_spool import RedisSpool
from mailsflux.types import JobSummary

if TYPE_CHECKING:
    from mailsflux.engine.engine import Engine, JobHandle


async def submit_to_redis(
    engine: Engine, handle: JobHandle, path: str | Path, *, on_problem: ProblemSink | None
) -> None:
    """Enqueue the job file at ``path`` and start ``handle`` following it."""
    assert engine.redis is not None
    problems = on_problem or handle.problems.append

    def prepare() -> tuple[RedisSpool, str, str, int]:
        job = load_job(path)
        make_signer(job)  # a key the job generates exists before the workers look for it
        spool = RedisSpool(engine.redis or "", prefix=engine.redis_prefix, key_file=engine.key_file)
        try:
            info, total = enqueue(spool, job, on_problem=problems)
        except BaseException:
            spool.close()
            raise
        return spool, info.id, info.name, total

    spool, jid, name, _ = await asyncio.to_thread(prepare)
    info = spool.job(jid)
    assert info is not None
    handle.counts.job = name

    def on_records(recs: list[Record]) -> None:
        for rec in recs:
            r = result_of(rec)
            handle._result(r)
            engine._emit(r)

    def on_counts(s: JobSummary) -> None:
        c = handle.counts
        c.sent, c.failed, c.deferred, c.skipped = s.sent, s.failed, s.deferred, s.skipped
        c.quarantined = s.quarantined
        c.total, c.elapsed = s.total, s.elapsed

    async def run() -> JobSummary:
        try:
            # Per-row results cost a read of the job's state hash each poll:
            # skipped when nobody takes them (keep_results=False, no listener).
            wanted = handle._keep or engine.on_result is not None or bool(engine._listeners)
            s = await follow(
                spool,
                info,
                stop=handle._stop,
                on_records=on_records if wanted else None,
                on_counts=on_counts,
            )
            if not s.interrupted:
                spool.end_job(jid, end_state({"quarantined": s.quarantined}))
            on_counts(s)
            handle.counts.interrupted = s.interrupted
            return handle.counts
        finally:
            engine._jobs.discard(handle)
            spool.close()

    handle._start(asyncio.ensure_future(run()))


__all__ = ["submit_to_redis"]
