"""The deferred queue: messages in the spool tried again when they come due.

:func:`run_queue` is one pass (``mailsflux queue run``, for cron or a
systemd timer): every due message of every job is tried once, through the
same scheduler and limits as the job it belongs to (its job file gives the
relay, throttles and retry schedule), and its new state recorded.
:func:`serve_queue` repeats passes until stopped (``mailsflux serve``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container, Iterator

from mailsflux._aio import within
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.relay import Relay
from mailsflux.errors import MailsfluxError
from mailsflux.jobs.jobfile import Job, load_job
from mailsflux.jobs.journal import Journal
from mailsflux.jobs.prepared import JobSuppression
from mailsflux.jobs.rows import ProblemSink
from mailsflux.jobs.run import send
from mailsflux.spool import JobInfo, SQLiteSpool
from mailsflux.types import DeliveryResult, JobSummary, Problem, RenderedMessage

#: Messages read from the spool at once: what a pass holds in memory.
CHUNK = 500


class _QueueSource:
    """A job's due messages, read from the spool a chunk at a time."""

    def __init__(self, job: Job, journal: Journal, lists: JobSuppression, now: float) -> None:
        self.job = job
        self.journal = journal
        self.lists = lists
        self.now = now

    @property
    def where(self) -> str:
        return f"spool job {self.journal.id}"

    @property
    def suppressed(self) -> Container[str] | None:
        return None  # checked in messages(), as each message is read back

    def suppress_bounce(self, r: DeliveryResult) -> None:
        self.lists.suppress_bounce(r)

    def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[RenderedMessage]:
        spool, jid = self.journal.spool, self.journal.id
        suppressed = self.lists.suppressed
        while chunk := spool.due(self.now, job=jid, limit=CHUNK):
            for item in chunk:
                msg = self.journal.take_unless(item, suppressed)
                if msg is not None:
                    yield msg


async def run_queue(
    spool: SQLiteSpool,
    *,
    job: str | None = None,
    relay: Relay | None = None,
    resolver: MXResolver | None = None,
    on_problem: ProblemSink,
    on_job: Callable[[JobInfo, JobSummary], None] | None = None,
    stop: asyncio.Event | None = None,
    hard_stop: asyncio.Event | None = None,
    now: float | None = None,
) -> list[tuple[JobInfo, JobSummary]]:
    """Try every due message once; return each job's tally for this pass."""
    now = time.time() if now is None else now
    done: list[tuple[JobInfo, JobSummary]] = []
    for info in spool.jobs():
        if job is not None and job not in (info.id, info.name):
            continue
        due = spool.next_due(info.id)
        if due is None or due > now:
            continue
        if stop is not None and stop.is_set():
            break
        if info.source.startswith("engine:"):
            # An Engine's one-off sends: that engine retries them while it runs.
            continue
        try:
            j = load_job(info.source)
        except MailsfluxError as exc:
            on_problem(
                Problem(
                    info.source,
                    f"job {info.name!r} ({info.id}): its deferred messages wait in the spool,"
                    f" but its job file cannot be loaded: {exc.message}; restore it, or"
                    f" `mailsflux queue drop {info.id}`",
                )
            )
            continue
        try:
            lists = JobSuppression(j)
        except MailsfluxError as exc:
            on_problem(Problem(info.source, f"job {info.name!r}: {exc}; its messages wait"))
            continue
        journal = Journal(spool, info, j)
        try:
            summary = await send(
                _QueueSource(j, journal, lists, now),
                relay,
                on_problem=on_problem,
                check_relay=False,
                resolver=resolver,
                stop=stop,
                hard_stop=hard_stop,
                journal=journal,
                attempts=1,
                summary=JobSummary(job=info.name),
            )
        except MailsfluxError as exc:
            # One job's trouble (a record that does not open, a relay that
            # fails) is said, and the other jobs still run.
            on_problem(Problem(info.source, f"job {info.name!r}: {exc}"))
            continue
        finally:
            lists.close()
        done.append((info, summary))
        if on_job is not None:
            on_job(info, summary)
    return done


async def serve_queue(
    spool: SQLiteSpool,
    *,
    relay: Relay | None = None,
    on_problem: ProblemSink,
    on_job: Callable[[JobInfo, JobSummary], None] | None = None,
    stop: asyncio.Event,
    hard_stop: asyncio.Event | None = None,
    idle: float = 60.0,
) -> None:
    """Pass after pass until ``stop``: sleep until the next message is due
    (at most ``idle`` seconds, so messages deferred by others are seen)."""
    while not stop.is_set():
        await run_queue(
            spool,
            relay=relay,
            on_problem=on_problem,
            on_job=on_job,
            stop=stop,
            hard_stop=hard_stop,
        )
        nxt = spool.next_due()
        wait = idle if nxt is None else min(max(nxt - time.time(), 0.05), idle)
        try:
            await within(stop.wait(), wait)
        except TimeoutError:
            pass


__all__ = ["CHUNK", "run_queue", "serve_queue"]
