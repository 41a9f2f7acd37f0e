"""A job's results written to the spool as they come: what makes it resumable.

Every result becomes the recipient's state in the spool, committed once per
SMTP batch (the scheduler calls :meth:`Journal.flush` after each batch, and
before that connection sends anything more), so after a crash at most the
messages in open SMTP transactions, and the results of batches being
settled at that instant, have no state: a resumed job sends those again
(the in-flight bound: ``connections`` x 32 messages per process). A
deferred message is parked in the spool with its signed bytes and its next
attempt on the job's :class:`~mailsflux.spool.RetrySchedule`, and leaves
memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Container, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailsflux.errors import SpoolError
from mailsflux.jobs._settle import delivered_records as _delivered_records
from mailsflux.jobs._settle import record_of as _record_of
from mailsflux.jobs.jobfile import Job
from mailsflux.spool import (
    JobInfo,
    Record,
    RetrySchedule,
    Spooled,
    SQLiteSpool,
    State,
    default_spool_dir,
)
from mailsflux.types import DeliveryResult, RenderedMessage

if TYPE_CHECKING:
    from mailsflux.spool.redis_spool import RedisSpool

#: Results kept in memory before a commit even if no batch ended.
_GROUP = 512


def job_id(job: Job) -> str:
    """A job's identity: where its file is (the same file resumes the same job)."""
    where = str(job.path.resolve()) if job.path.name else job.name
    return "job-" + hashlib.sha256(where.encode()).hexdigest()[:16]


def fingerprint(path: Path) -> str:
    """What the recipient file holds: SHA-256 of its bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def schedule_for(job: Job, domain: str = "") -> RetrySchedule:
    """The job's retry schedule, with the domain's overrides."""
    d = job.spec.delivery
    o = d.domains.get(domain) if domain else None
    return RetrySchedule(
        initial=(o.queue_initial if o and o.queue_initial is not None else d.queue_initial),
        max_delay=(o.queue_max if o and o.queue_max is not None else d.queue_max),
        max_age=(o.max_age if o and o.max_age is not None else d.max_age),
    )


def pending_record(msg: RenderedMessage, now: float) -> Record:
    """``msg`` stored whole to be tried from ``now``; its row is given when appended."""
    return Record(
        row=0,
        state="pending",
        recipient=msg.rcpt_to,
        message_id=msg.message_id,
        domain=msg.domain,
        first_at=now,
        next_at=now,
        message=msg,
    )


class Journal:
    """The bridge from a running job's results to its spool records."""

    def __init__(self, spool: SQLiteSpool | RedisSpool, info: JobInfo, job: Job) -> None:
        self.spool = spool
        self.info = info
        self.job = job
        self._buffer: list[Record] = []
        self._parked: dict[int, tuple[RenderedMessage, float]] = {}
        #: Records of messages read back from the spool (queue runs): their
        #: earlier attempts count, and their first attempt is the first ever.
        self.prior: dict[int, Record] = {}
        #: Rows this process holds to try (stored, or taken from the spool),
        #: until their result: their claim is renewed while they wait.
        self.held: set[int] = set()
        self._schedules: dict[str, RetrySchedule] = {}
        self._flush_soon = False
        #: The first error writing the spool (a full disk): the job stops on it.
        self.error: Exception | None = None
        #: Set when writing failed; the job runner stops the job.
        self.broken = asyncio.Event()

    @property
    def id(self) -> str:
        return self.info.id

    def hold(self, msg: RenderedMessage) -> RenderedMessage:
        """Store ``msg`` whole, under a new row, before it is handed to the
        scheduler (one commit): a crash from here on loses nothing, it is
        tried again once its claim has run out. Returns it with its row.
        Raises SpoolError when it cannot be stored."""
        return self.hold_many([msg])[0]

    def hold_many(self, msgs: Sequence[RenderedMessage]) -> list[RenderedMessage]:
        """:meth:`hold` for several messages, in one commit."""
        if self.error is not None:
            self.flush()  # the spool may have room again
            if self.error is not None:
                raise SpoolError(f"the spool cannot be written: {self.error}")
        now = time.time()
        recs = [pending_record(msg, now) for msg in msgs]
        self.spool.append_many(self.info.id, recs)
        out = []
        for rec in recs:
            assert rec.message is not None
            self.held.add(rec.row)
            out.append(rec.message)
        return out

    def take(self, item: Spooled) -> RenderedMessage:
        """A message read back from the spool to be tried by this process."""
        self.prior[item.record.row] = item.record
        self.held.add(item.record.row)
        return item.message

    def renew(self) -> None:
        """Keep every message this process holds claimed (a long queue, a slow
        receiver): another runner must not take them while they wait here."""
        if self.held:
            self.spool.extend_claim(self.info.id, self.held, time.time() + self.spool.claim)

    def take_unless(
        self, item: Spooled, suppressed: Container[str] | None
    ) -> RenderedMessage | None:
        """:meth:`take`, unless its recipient was suppressed while it waited
        (then recorded so, and None)."""
        msg = self.take(item)
        if suppressed is None or msg.rcpt_to not in suppressed:
            return msg
        self.settle(
            DeliveryResult(
                recipient=msg.rcpt_to,
                message_id=msg.message_id,
                status="skipped",
                reply="suppressed while waiting in the spool",
                attempts=0,
                row=msg.row,
                category="suppressed",
            )
        )
        return None

    def skip(self, row: int, *, suppressed: bool = False) -> None:
        """A row not sent at all (reported as a problem when it was read)."""
        state: State = "suppressed" if suppressed else "skipped"
        self._buffer.append(Record(row=row, state=state, updated=time.time()))
        if len(self._buffer) >= _GROUP:
            self.flush()

    def release(self, msg: RenderedMessage, why: str) -> None:
        """A held message that will not be tried after all (its sender was
        told it failed): recorded failed, its bytes deleted."""
        self.held.discard(msg.row)
        self.spool.store(
            self.info.id,
            [
                Record(
                    row=msg.row, state="failed", domain=msg.domain, reply=why, category="not-sent"
                )
            ],
        )

    async def keep_claims(self) -> None:
        """Renew the claims on what this process holds, a third of a claim apart."""
        tick = max(self.spool.claim / 3, 0.05)
        while True:
            await asyncio.sleep(tick)
            # A locked or full spool: the next tick tries again.
            with contextlib.suppress(Exception):
                self.renew()

    def settled(self) -> bytearray:
        return self.spool.settled_rows(self.info.id)

    def _schedule(self, domain: str) -> RetrySchedule:
        s = self._schedules.get(domain)
        if s is None:
            s = self._schedules[domain] = schedule_for(self.job, domain)
        return s

    def park(self, msg: RenderedMessage, first_wall: float) -> None:
        """The scheduler gave up on ``msg`` for this run: keep its bytes for the
        result that follows (the scheduler calls this just before it)."""
        self._parked[msg.row] = (msg, first_wall)

    def settle(self, r: DeliveryResult) -> DeliveryResult:
        """Record ``r``; returns the result as final (a deferral past the
        schedule's ``max_age`` has become a bounce: expired)."""
        now = time.time()
        # Its row no longer held, its earlier attempts (a queue run's) counted;
        # and the message parked for it, if any.
        rec, parked, _ = _record_of(r, now, self.held, self.prior, self._parked, Record)
        attempts, first = rec.attempts, rec.first_at
        if r.status == "deferred":
            nxt = self._schedule(rec.domain).next_attempt(attempts, first, now)
            msg = parked[0] if parked else None
            if nxt is None or msg is None:
                days = (now - first) / 86_400
                why = "no copy of it was kept" if msg is None else f"after {days:.1f} days"
                r = DeliveryResult(
                    recipient=r.recipient,
                    message_id=r.message_id,
                    status="bounced",
                    code=r.code,
                    enhanced_status=r.enhanced_status or "4.4.7",
                    reply=f"expired ({attempts} attempts, {why}): {r.reply}"[:500],
                    attempts=attempts,
                    row=r.row,
                    category="expired",
                    tags=r.tags,
                    metadata=r.metadata,
                )
                rec.state, rec.reply, rec.category = "bounced", r.reply, "expired"
            else:
                rec.next_at, rec.message = nxt, msg
        self._buffer.append(rec)
        self._buffered()
        return r

    def settle_delivered(self, rs: list[DeliveryResult]) -> list[str]:
        """:meth:`settle` for results that are all "delivered" (none can
        expire), a batch at a time, in compiled code; returns their
        recipients' domains."""
        records, domains = _delivered_records(
            rs, time.time(), self.held, self.prior, self._parked, Record
        )
        self._buffer.extend(records)
        self._buffered()
        return domains

    def _buffered(self) -> None:
        """Records were buffered: commit them now if there are many, else
        by the end of this turn of the loop at the latest."""
        if len(self._buffer) >= _GROUP:
            self.flush()
        elif not self._flush_soon:
            # Results that come from no batch (a lookup failure, a timer)
            # are committed by the end of this turn of the loop.
            self._flush_soon = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Commit what is buffered (one transaction)."""
        self._flush_soon = False
        if not self._buffer:
            self.written([])
            return
        batch = self._buffer
        try:
            self.spool.store(self.info.id, batch)
        except Exception as exc:
            # Not raised into the scheduler (a worker would take it for its
            # own fault). The results stay buffered and are written by the
            # next flush that succeeds (writing them twice is harmless).
            # Nothing is recorded that did not happen.
            self.write_failed(exc)
            return
        self._buffer = []
        self.written(batch)

    def write_failed(self, exc: Exception) -> None:
        """A commit failed: a job stops on it, an engine refuses new messages until then."""
        self.error = exc
        self.broken.set()

    def written(self, batch: Sequence[Record]) -> None:
        """``batch`` is committed (empty: there was nothing to commit)."""
        if batch and self.error is not None:
            self.error = None
            self.broken = asyncio.Event()

    def next_due(self) -> float | None:
        return self.spool.next_due(self.info.id)


def spool_dir(job: Job) -> Path:
    """Where the job's spool is: ``[spool] dir`` (relative to the job file), else the default."""
    s = job.spec.spool
    return job.resolve(s.dir) if s.dir else default_spool_dir()


def open_spool(job: Job) -> SQLiteSpool:
    """The job's spool (see :func:`spool_dir`)."""
    s = job.spec.spool
    key_file = job.resolve(s.key_file) if s.key_file else None
    return SQLiteSpool(spool_dir(job), key_file=key_file, durable=s.fsync, claim=s.claim)


def start(job: Job, spool: SQLiteSpool, *, restart: bool = False, joining: bool = False) -> Journal:
    """Begin (or resume) ``job`` in ``spool``: its journal, resumable rows known.
    ``joining``: a worker process of a run its parent began."""
    info = JobInfo(
        id=job_id(job),
        name=job.name,
        source=str(job.path.resolve()),
        fingerprint=fingerprint(job.recipients_path),
    )
    return Journal(spool, spool.begin_job(info, restart=restart, joining=joining), job)


def count_bits(bits: bytearray) -> int:
    return int.from_bytes(bits, "little").bit_count()


__all__ = [
    "Journal",
    "count_bits",
    "fingerprint",
    "job_id",
    "open_spool",
    "pending_record",
    "schedule_for",
    "spool_dir",
    "start",
]
