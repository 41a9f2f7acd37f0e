"""``Engine(..., redis=URL).submit(job_file or Batch)``: the job goes to Redis, workers send it.

A :class:`~mailsflux.Batch` has no job directory the workers could read: the
engine composes and signs its messages and puts the sealed bytes into Redis
as a prepared job (:mod:`mailsflux.jobs.redis_batches`); the handle follows
it the same way, and a hard bounce is recorded in this engine's suppression.

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
import contextlib
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from mailsflux._aio import within
from mailsflux.jobs import redis_batches
from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.prepared import make_signer
from mailsflux.jobs.redis_batches import COUNT, SIZE, WINDOW, BatchWriter, skipped
from mailsflux.jobs.rows import ProblemSink
from mailsflux.jobs.run import Source
from mailsflux.jobs.worker import end_state, enqueue, ensure_group, follow, result_of
from mailsflux.masking import log_text
from mailsflux.spool import JobInfo, Record
from mailsflux.spool.redis_spool import RedisSpool
from mailsflux.types import DeliveryResult, JobSummary, Problem, RenderedMessage

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
    _follow(engine, handle, spool, info)


async def submit_batch_to_redis(
    engine: Engine,
    handle: JobHandle,
    source: Source,
    *,
    relay: str | None,
    tags: tuple[str, ...],
    metadata: dict[str, str],
    on_problem: ProblemSink | None,
) -> None:
    """Compose and sign ``source``'s messages here, put them sealed into Redis
    as a prepared job (:mod:`mailsflux.jobs.redis_batches`) for the workers,
    and start ``handle`` following it."""
    assert engine.redis is not None
    problems = on_problem or handle.problems.append
    delivery = msgspec.structs.replace(source.job.spec.delivery)
    if relay is not None:
        delivery.relay = relay

    def prepare() -> tuple[RedisSpool, BatchWriter]:
        spool = RedisSpool(engine.redis or "", prefix=engine.redis_prefix, key_file=engine.key_file)
        try:
            writer = BatchWriter(
                spool, source.job.name, engine.origin, delivery, lease=redis_batches.FEED_LEASE
            )
            ensure_group(spool, writer.id)
        except BaseException:
            spool.close()
            raise
        return spool, writer

    spool, writer = await asyncio.to_thread(prepare)
    stop = handle._stop
    skips: list[Record] = []
    rows_at = source.where + ": row "

    def problem(p: Problem) -> None:
        problems(p)
        # A row skipped as it was built is settled too: counts add up, and
        # the job's end is not waited for it.
        row = p.where[len(rows_at) :] if p.where.startswith(rows_at) else ""
        if row.isdigit():
            skips.append(skipped(int(row), suppressed="suppressed;" in p.message))

    async def feed() -> None:
        msgs: list[RenderedMessage] = []
        size = 0

        async def put() -> None:
            nonlocal msgs, size
            if msgs or skips:
                await asyncio.to_thread(writer.put, msgs, list(skips))
                msgs, size = [], 0
                skips.clear()
            # The workers keep up, or this waits: Redis holds a window of the batch.
            while not stop.is_set() and await asyncio.to_thread(writer.waiting) > WINDOW:
                with contextlib.suppress(TimeoutError):
                    await within(stop.wait(), 0.1)

        # While this process lives the job stays open, however slowly the
        # rows come (the lease is renewed from a thread); if it dies, the
        # workers end the job once the lease has run out.
        writer.start_renewing()
        try:
            async for msg in _aiter(source.messages(problem)):
                if stop.is_set() or writer.ended.is_set():
                    break
                msgs.append(msg)
                size += len(msg.data)
                if len(msgs) >= COUNT or size >= SIZE:
                    await put()
            await put()
            writer.check_open()  # the workers ended the job: the rest never went in
        finally:
            # Even when stopped: what is in Redis is sent, and its end is known.
            await asyncio.to_thread(writer.finish)

    def result(r: DeliveryResult) -> DeliveryResult:
        if tags or metadata:
            r = msgspec.structs.replace(r, tags=tags, metadata=metadata)
        # The workers keep no suppression store of this engine: its own records the bounce.
        try:
            engine._suppress_bounce(r, source.job.name)
        except Exception as exc:  # a failing store must not lose the result
            print(log_text(f"mailsflux: cannot record a bounce: {exc}"), file=sys.stderr)
        return r

    _follow(engine, handle, spool, writer.info, feed=feed(), adapt=result)


def _follow(
    engine: Engine,
    handle: JobHandle,
    spool: RedisSpool,
    info: JobInfo,
    *,
    feed: Coroutine[Any, Any, None] | None = None,
    adapt: Callable[[DeliveryResult], DeliveryResult] | None = None,
) -> None:
    """Start ``handle`` following the job in Redis (while ``feed`` puts it in)."""
    jid = info.id

    def on_records(recs: list[Record]) -> None:
        for rec in recs:
            if not rec.message_id and rec.state in ("skipped", "suppressed"):
                continue  # a row never built: a problem when read, not a result (as locally)
            r = result_of(rec)
            if adapt is not None:
                r = adapt(r)
            handle._result(r)
            engine._emit(r)

    def on_counts(s: JobSummary) -> None:
        c = handle.counts
        c.sent, c.failed, c.deferred, c.skipped = s.sent, s.failed, s.deferred, s.skipped
        c.quarantined = s.quarantined
        c.total, c.elapsed = s.total, s.elapsed

    async def run() -> JobSummary:
        feeding = asyncio.ensure_future(feed) if feed is not None else None
        if feeding is not None:
            # A batch that cannot be put in (Redis gone) ends the following too.
            feeding.add_done_callback(_stop_on_failure(handle._stop))
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
            if feeding is not None:
                await feeding
            if not s.interrupted:
                spool.end_job(jid, end_state({"quarantined": s.quarantined}))
            on_counts(s)
            handle.counts.interrupted = s.interrupted
            return handle.counts
        finally:
            if feeding is not None and not feeding.done():
                feeding.cancel()
                await asyncio.gather(feeding, return_exceptions=True)
            engine._jobs.discard(handle)
            spool.close()

    handle._start(asyncio.ensure_future(run()))


def _stop_on_failure(stop: asyncio.Event) -> Callable[[asyncio.Future[None]], None]:
    def done(f: asyncio.Future[None]) -> None:
        if not f.cancelled() and f.exception() is not None:
            stop.set()

    return done


async def _aiter(
    items: Iterable[RenderedMessage] | AsyncIterable[RenderedMessage],
) -> AsyncIterator[RenderedMessage]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


__all__ = ["submit_batch_to_redis", "submit_to_redis"]
