"""One send shared by many worker processes, on many hosts, through Redis.

:func:`enqueue` (``mailsflux send JOB --redis URL``) reads the recipient
file and puts its rows, ``BATCH`` at a time and sealed, into the job's Redis
Stream (:class:`~mailsflux.spool.RedisSpool` key ``q``, consumer group
``w``); bad rows are recorded skipped there and then. :func:`run_worker`
(``mailsflux worker --redis URL``) runs in any number of processes: each
takes batches (``XREADGROUP``), composes and signs their rows with the job
file's templates and key, and sends them through the usual scheduler, so
the job's ``throttle = "redis://..."`` limits and connection leases hold
across all of them. Every result is a state in Redis, written once per SMTP
batch; a stream entry is acknowledged (and deleted) once every one of its
rows has a state.

A worker renews the entries it holds every ``lease / 3``. One that dies
stops renewing, and after ``lease`` seconds another takes its entries over
(``XAUTOCLAIM``) and sends the rows that have no state yet: nobody is lost,
and what arrives twice is at most what the dead worker had sent and not yet
recorded (its open SMTP transactions, ``connections`` x 32 messages).
Deferred messages wait in the spool and are tried by whichever worker is
free when they come due.

A lost Redis (a restart, a network cut) pauses sending: batches cannot be
read, the shared throttles grant nothing, and results wait in memory until
they can be written. Nothing is sent twice for it unless Redis itself
loses writes it acknowledged (see the README on ``appendfsync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Container, Iterable, Sequence
from typing import IO, Any, Final

import msgspec
import redis

from mailsflux._aio import within
from mailsflux.delivery.relay import Relay
from mailsflux.errors import MailsfluxError, SpoolError
from mailsflux.jobs.composer import Composer, message_tokens
from mailsflux.jobs.jobfile import Job, load_job
from mailsflux.jobs.journal import Journal, fingerprint, job_id
from mailsflux.jobs.prepared import JobSuppression, make_signer
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.redis_batches import (
    RESULTS,
    batch_ctx,
    end_if_abandoned,
    is_prepared,
    lease_state,
    open_messages,
    prepared_job,
)
from mailsflux.jobs.rows import ProblemSink, composed
from mailsflux.jobs.run import send
from mailsflux.spool import JobInfo, Record
from mailsflux.spool.keys import UnknownKeyError
from mailsflux.spool.redis_spool import UNREADABLE, FinalsCursor, RedisSpool
from mailsflux.spool.store import FINAL
from mailsflux.types import DeliveryResult, JobSummary, Problem, Recipient, RenderedMessage

#: Rows in one stream entry: what a worker takes at once.
BATCH: Final = 64
#: The consumer group every worker reads a job's stream in.
GROUP: Final = "w"
#: Seconds after which a silent worker's batches are taken over.
LEASE: Final = 30.0
#: Deferred messages read from the spool at once.
CHUNK: Final = 500
#: Seconds an idle worker first waits before it looks again (doubled each
#: look, up to the poll interval): the end of a job is noticed at once.
IDLE_FIRST: Final = 0.02
#: Stream entries a worker holds unsettled before it takes another: the rest
#: stay for the other workers (and a dead worker strands no more than this).
AHEAD: Final = 4

_rows_enc = msgspec.msgpack.Encoder()
_rows_dec = msgspec.msgpack.Decoder(list[tuple[int, str, dict[str, str]]])


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def ensure_group(spool: RedisSpool, job: str) -> None:
    try:
        spool.client.xgroup_create(spool.key(job, "q"), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise SpoolError(f"cannot create the job's stream: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        raise SpoolError(f"spool write failed (Redis): {exc}") from None


def enqueue(
    spool: RedisSpool,
    job: Job,
    *,
    on_problem: ProblemSink,
    restart: bool = False,
    batch: int = BATCH,
) -> tuple[JobInfo, int]:
    """Put the job's rows into its stream (resuming after the last row put
    there by an earlier, interrupted call); returns the job and its row count."""
    info = JobInfo(
        id=job_id(job),
        name=job.name,
        source=str(job.path.resolve()),
        fingerprint=fingerprint(job.recipients_path),
    )
    info = spool.begin_job(info, restart=restart)
    jid = info.id
    ensure_group(spool, jid)
    client = spool.client
    try:
        through = int(client.get(spool.key(jid, "enq")) or 0)
    except (redis.RedisError, OSError) as exc:
        raise SpoolError(f"spool read failed (Redis): {exc}") from None
    rf = RecipientFile(job.recipients_path, email_column=job.spec.recipients.email_column)
    total = rf.count_rows()
    # The last rows of a big job go in smaller entries: a worker holds up
    # to AHEAD entries, and at the end of a job the others, with nothing
    # left to take, wait for what it holds.
    tail_rows = batch * AHEAD * 2
    tail = size = max(batch // 4, 1) if total > tail_rows else batch
    spool.set_total(jid, total)
    settled = spool.settled_rows(jid)
    top = len(settled) << 3
    rows: list[tuple[int, str, dict[str, str]]] = []
    skips: list[Record] = []
    last = through

    def put(done: bool = False) -> None:
        if skips:
            spool.store(jid, skips)
            skips.clear()
        pipe = client.pipeline(transaction=True)
        if rows:
            first = rows[0][0]
            sealed = spool.keys.seal(_rows_enc.encode(rows), batch_ctx(jid, first))
            # ``n``: how many rows a batch that cannot be opened leaves unsent.
            pipe.xadd(spool.key(jid, "q"), {"first": first, "n": len(rows), "rows": sealed})
            rows.clear()
        pipe.set(spool.key(jid, "enq"), last)
        if done:
            pipe.set(spool.key(jid, "end"), 1)
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise SpoolError(f"spool write failed (Redis): {exc}") from None

    read = 0  # records so far (a row number is a line number: fields may span lines)
    for item in rf:
        read += 1
        row = item.row if isinstance(item, Recipient) else _problem_row(item)
        if row <= through or (row < top and settled[row >> 3] & (1 << (row & 7))):
            continue
        last = max(last, row)
        if isinstance(item, Problem):
            on_problem(item)
            if row:
                skips.append(Record(row=row, state="skipped", updated=time.time()))
            continue
        if not rows:  # a new entry: its size by the rows left
            size = batch if total - read >= tail_rows else tail
        rows.append((row, item.email, dict(item.vars)))
        if len(rows) >= size:
            put()
    put(done=True)
    return info, total


def _problem_row(p: Problem) -> int:
    tail = p.where.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def progress_of(spool: RedisSpool, job: str) -> tuple[dict[str, int], bool]:
    """The job's counts, and whether every batch has been taken and settled."""
    pipe = spool.client.pipeline(transaction=False)
    pipe.get(spool.key(job, "end"))
    pipe.xlen(spool.key(job, "q"))
    try:
        end, left = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        raise SpoolError(f"spool read failed (Redis): {exc}") from None
    return spool.counts(job), bool(end) and not left


def result_of(rec: Record) -> DeliveryResult:
    """A row's final record as the result a local send would have given."""
    status: Any = rec.state
    return DeliveryResult(
        recipient=rec.recipient,
        message_id=rec.message_id,
        status=status,
        code=rec.code,
        enhanced_status=rec.enhanced_status,
        reply=rec.reply,
        attempts=rec.attempts,
        row=rec.row,
        category=rec.category,
    )


def summary_of(name: str, counts: dict[str, int], elapsed: float) -> JobSummary:
    s = JobSummary(job=name, elapsed=elapsed)
    s.sent = counts.get("delivered", 0)
    s.failed = counts.get("bounced", 0) + counts.get("failed", 0)
    s.deferred = counts.get("deferred", 0)
    s.skipped = counts.get("skipped", 0) + counts.get("suppressed", 0)
    s.quarantined = counts.get("quarantined", 0)
    s.total = s.sent + s.failed + s.deferred + s.skipped + s.quarantined
    return s


def end_state(counts: dict[str, int]) -> str:
    """What a job whose every batch is settled ended as: ``finished``, or
    ``incomplete`` when batches were set aside unsent (quarantined)."""
    return "incomplete" if counts.get("quarantined", 0) else "finished"


async def follow(
    spool: RedisSpool,
    info: JobInfo,
    *,
    stop: asyncio.Event,
    on_progress: Callable[[int], None] | None = None,
    on_records: Callable[[list[Record]], None] | None = None,
    on_counts: Callable[[JobSummary], None] | None = None,
    poll: float = 0.5,
) -> JobSummary:
    """Wait until every row of the job has a state (or ``stop``); its tally.
    ``on_records`` gets each row's record once it is final, ``on_counts`` the
    tally so far, both at every poll."""
    start = time.time()
    done = False
    counts: dict[str, int] = {}
    cursor = FinalsCursor()
    while not stop.is_set():
        try:
            counts, done = progress_of(spool, info.id)
            if on_records is not None:
                # After the counts: a row counted now is reported now or next time.
                fresh = await asyncio.to_thread(spool.finals, info.id, cursor)
                if fresh:
                    on_records(fresh)
        except SpoolError:
            pass  # Redis restarting: the workers pause too; try again
        if on_progress is not None:
            on_progress(sum(n for s, n in counts.items() if s != "pending"))
        if on_counts is not None:
            on_counts(summary_of(info.name, counts, time.time() - start))
        if done:
            break
        with contextlib.suppress(TimeoutError):
            await within(stop.wait(), poll)
    s = summary_of(info.name, counts, time.time() - start)
    s.interrupted = not done
    return s


class StreamJournal(Journal):
    """A worker's journal: once every row of a stream entry has its state
    written, the entry is acknowledged. A failed write does not stop the job
    (Redis may be restarting): the results wait and are written again."""

    def __init__(self, spool: RedisSpool, info: JobInfo, job: Job) -> None:
        super().__init__(spool, info, job)
        self.rspool = spool
        self.queue = spool.key(info.id, "q")
        #: Stream entry -> its rows without a state yet; row -> its entry.
        self.open: dict[str, set[int]] = {}
        self.entry_of: dict[int, str] = {}
        self._unacked: list[str] = []
        #: A prepared job's final rows not yet announced on its ``res`` stream,
        #: which its submitter reads (:mod:`.redis_batches`).
        self._unreported: list[int] = []
        self.results = spool.key(info.id, RESULTS) if is_prepared(info) else None
        self._retry: asyncio.TimerHandle | None = None
        #: Set whenever results are written: a source waiting for its batches
        #: to settle looks again at once instead of at its next poll.
        self.progressed = asyncio.Event()

    def expect(self, entry: str, rows: Iterable[int]) -> None:
        left = set(rows)
        if not left:
            self._unacked.append(entry)
            self._ack()
            return
        self.open[entry] = left
        for r in left:
            self.entry_of[r] = entry

    def write_failed(self, exc: Exception) -> None:
        # Not broken: sending pauses by itself while Redis is away, and this retries.
        self.error = exc
        self._again()

    def written(self, batch: Sequence[Record]) -> None:
        self.error = None
        self.progressed.set()
        for rec in batch:
            if self.results is not None and rec.state in FINAL:
                self._unreported.append(rec.row)
            entry = self.entry_of.pop(rec.row, None)
            if entry is not None:
                left = self.open.get(entry)
                if left is not None:
                    left.discard(rec.row)
                    if not left:
                        del self.open[entry]
                        self._unacked.append(entry)
        self._ack()

    def _ack(self) -> None:
        if not self._unacked and not self._unreported:
            return
        ids, rows = self._unacked, self._unreported
        pipe = self.rspool.client.pipeline(transaction=True)
        if rows and self.results is not None:
            # Announced once written (a row told twice after a failed reply is
            # harmless: the submitter settles a row once).
            pipe.xadd(self.results, {"rows": ",".join(map(str, rows))})
        if ids:
            pipe.xack(self.queue, GROUP, *ids)
            pipe.xdel(self.queue, *ids)
        try:
            pipe.execute()
        except (redis.RedisError, OSError):
            self._again()
            return
        self._unacked, self._unreported = [], []

    def _again(self) -> None:
        """Try the write again in a moment (Redis restarting, a cut)."""
        if self._retry is None:
            with contextlib.suppress(RuntimeError):
                self._retry = asyncio.get_running_loop().call_later(0.25, self._retried)

    def _retried(self) -> None:
        self._retry = None
        self.flush()

    @property
    def idle(self) -> bool:
        return not self.open and not self._buffer and not self._unacked and not self._unreported


class _StreamSource:
    """The rows of a job's stream entries, and its deferred messages as they come due."""

    def __init__(
        self,
        job: Job,
        spool: RedisSpool,
        journal: StreamJournal,
        lists: JobSuppression,
        composer: Composer | None,
        *,
        consumer: str,
        lease: float,
        poll: float,
        note: Callable[[str], None],
    ) -> None:
        self.job = job
        self.spool = spool
        self.journal = journal
        self.lists = lists
        self.composer = composer
        self.consumer = consumer
        self.lease = lease
        self.poll = poll
        self.note = note
        self.jid = journal.id
        self.queue = spool.key(self.jid, "q")
        self._down = False
        #: Since when Redis has answered without a break (monotonic).
        self._up_since: float | None = time.monotonic()
        #: Until when this host takes no new batch (monotonic): it met one
        #: sealed with a key its file lacks, and hosts that hold the key
        #: should get the next ones rather than wait a lease for them.
        self._lagging_until = 0.0
        #: How long an idle look waits before the next (see :meth:`messages`).
        self._idle_wait = IDLE_FIRST

    @property
    def where(self) -> str:
        return str(self.job.recipients_path)

    @property
    def suppressed(self) -> Container[str] | None:
        return None  # checked in messages(), as each row is taken

    def suppress_bounce(self, r: DeliveryResult) -> None:
        self.lists.suppress_bounce(r)

    def _redis(self, fn: Callable[[], Any]) -> Any:
        """One Redis step; None while Redis cannot be reached (noted once)."""
        try:
            got = fn()
        except (redis.RedisError, OSError, SpoolError) as exc:
            if not self._down:
                self.note(f"Redis unreachable, sending paused: {exc}")
            self._down, self._up_since = True, None
            return None
        if self._up_since is None:
            self._up_since = time.monotonic()
        if self._down:
            self.note("Redis is back: sending resumed")
            self._down = False
        return got

    def _open(self, first: int, sealed: bytes) -> list[Any]:
        """A stream entry's rows."""
        return _rows_dec.decode(self.spool.keys.open(sealed, batch_ctx(self.jid, first)))

    def _take(self) -> tuple[str, list[Any]] | None:
        c = self.spool.client
        ms = int(self.lease * 1000)
        got: Any = None
        up = self._up_since
        # After an outage every worker's entries look idle, the living ones'
        # too: none is taken over until their holders have had a lease to renew.
        if up is not None and time.monotonic() - up >= self.lease:
            got = self._redis(lambda: c.xautoclaim(self.queue, GROUP, self.consumer, ms, "0-0", 1))
        entries = got[1] if got else []
        if not entries and self._up_since is not None and time.monotonic() >= self._lagging_until:
            read = self._redis(
                lambda: c.xreadgroup(GROUP, self.consumer, {self.queue: ">"}, count=1)
            )
            entries = read[0][1] if read else []
        if not entries:
            return None
        raw, fields = entries[0]
        eid = _text(raw)
        if not fields:  # deleted meanwhile (acknowledged by its first holder)
            self._redis(lambda: c.xack(self.queue, GROUP, eid))
            return None
        try:
            rows = self._open(int(fields[b"first"]), fields[b"rows"])
        except UnknownKeyError as exc:
            # A key file lagging a rotation, not damage: the entry stays
            # pending, taken over after the lease by a host that holds the
            # key, or by this one once its file (read again each time) does.
            self.spool.missing_key(exc)
            self._lagging_until = time.monotonic() + self.lease
            return None
        except UNREADABLE as exc:
            self._set_aside(eid, fields, exc)
            return None
        self._lagging_until = 0.0
        return eid, rows

    def _set_aside(self, eid: str, fields: dict[bytes, bytes], exc: Exception) -> None:
        """A batch that does not authenticate (altered bytes) would stop each
        worker that takes it, or be taken over forever: it is kept, still
        sealed, in the job's quarantine, its rows counted ``quarantined``,
        and leaves the stream."""
        why = str(exc) or type(exc).__name__
        first = fields.get(b"first", b"0")
        row = int(first) if first.isdigit() else 0
        n = fields.get(b"n", b"")
        count = int(n) if n.isdigit() else 1  # an entry from before ``n``: at least one
        sealed = fields.get(b"rows", b"")

        # A prepared entry (an engine's Batch or outbox) names its rows: each
        # is recorded failed and announced, so its submitter's sends resolve.
        at = fields.get(b"at", b"").decode()
        rows = [int(r) for r in at.split(",") if r.isdigit()]
        results = self.spool.key(self.jid, RESULTS) if rows else None

        def move() -> bool:
            self.spool.quarantine(self.jid, f"batch:{eid}", why, row, sealed, 0 if rows else count)
            if rows:
                self.spool.store(
                    self.jid,
                    [Record(row=r, state="failed", category="unreadable", reply=why) for r in rows],
                )
            c = self.spool.client
            pipe = c.pipeline(transaction=True)
            if results is not None:
                pipe.xadd(results, {"rows": at})
            pipe.xack(self.queue, GROUP, eid)
            pipe.xdel(self.queue, eid)
            pipe.execute()
            return True

        if self._redis(move):  # Redis away: the entry stays pending, set aside later
            self.note(f"job {self.jid}: batch {eid} ({count} rows from row {row}) set aside: {why}")

    async def _renew(self) -> None:
        """Keep this worker's entries from looking abandoned while it works."""
        c = self.spool.client
        while True:
            await asyncio.sleep(self.lease / 3)
            mine = list(self.journal.open)
            if not mine:
                continue
            held = self._redis(
                lambda: c.xpending_range(
                    self.queue,
                    GROUP,
                    min="-",
                    max="+",
                    count=len(mine) + 1000,  # noqa: B023 - called at once
                    consumername=self.consumer,
                )
            )
            if held is None:
                continue
            # Only entries still being worked on: one taken while Redis failed
            # (never started) must run out and be taken over, not kept alive.
            working = set(self.journal.open)
            ids = [h["message_id"] for h in held if _text(h["message_id"]) in working]
            if ids:
                self._redis(
                    lambda: c.xclaim(self.queue, GROUP, self.consumer, 0, ids, justid=True)  # noqa: B023
                )

    async def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> AsyncIterator[RenderedMessage]:
        renew = asyncio.ensure_future(self._renew())
        loop = asyncio.get_running_loop()
        try:
            while True:
                if len(self.journal.open) >= AHEAD:
                    await asyncio.sleep(0.01)
                    continue
                taken = self._take()
                if taken is not None:
                    self._idle_wait = IDLE_FIRST
                    for msg in self._compose(*taken, on_problem):
                        yield msg
                    loop.call_soon(self.journal.flush)
                    continue
                due = self._redis(lambda: self.spool.due(time.time(), job=self.jid, limit=CHUNK))
                if due:
                    self._idle_wait = IDLE_FIRST
                    for item in due:
                        again = self.journal.take_unless(item, self.lists.suppressed)
                        if again is not None:
                            yield again
                    continue
                if due is not None and self.journal.idle:
                    self._idle()
                    got = self._redis(lambda: progress_of(self.spool, self.jid))
                    if got is not None and got[1]:
                        return  # every batch settled; deferred ones come back when due
                # Woken early when this worker's own results are written: its
                # last batch settling is the usual reason there is news. With
                # none of its own in flight, the news is another worker's
                # (its last batches settling end the job): looked for soon,
                # then less and less often, up to every ``poll``.
                wait = self.poll
                if self.journal.idle:
                    wait, self._idle_wait = self._idle_wait, min(self._idle_wait * 2, self.poll)
                self.journal.progressed.clear()
                with contextlib.suppress(TimeoutError):
                    await within(self.journal.progressed.wait(), wait)
        finally:
            renew.cancel()

    def _idle(self) -> None:
        """Nothing left to take and nothing in flight: a look at the job itself."""

    def _compose(
        self, entry: str, rows: list[tuple[int, str, dict[str, str]]], on_problem: ProblemSink
    ) -> list[RenderedMessage]:
        states = self._redis(lambda: self.spool.states(self.jid, [r[0] for r in rows]))
        if states is None:
            return []  # not acknowledged: taken again after the lease
        todo = [r for r, s in zip(rows, states, strict=True) if s is None or s == "pending"]
        self.journal.expect(entry, [r[0] for r in todo])
        composer = self.composer
        assert composer is not None
        # Composed together (signs after assembly, Composer.compose_batch),
        # suppression asked of the whole batch; problems keep the rows' order.
        batch = [
            (Recipient(email=email, vars=vars, row=row), token)
            for (row, email, vars), token in zip(todo, message_tokens(len(todo)), strict=True)
        ]
        messages, problems = composed(
            composer, self.job.recipients_path, batch, self.lists.suppressed
        )
        for _, problem in problems:
            on_problem(problem)
        return messages


class _PreparedSource(_StreamSource):
    """A prepared job's stream (:mod:`.redis_batches`): its entries hold
    messages the submitter composed and signed; they are sent as they are."""

    @property
    def where(self) -> str:
        return str(self.job.path)

    def _open(self, first: int, sealed: bytes) -> list[Any]:
        return open_messages(self.spool, self.jid, first, sealed)

    #: Since when (monotonic) this worker has found the job's lease gone.
    _lease_gone_since: float | None = None

    def _idle(self) -> None:
        # A Batch whose submitter died while putting it in: ended with what
        # is in, so the job completes instead of being watched for ever;
        # only once the lease has stayed gone a whole lease by this worker's
        # clock (a restarted Redis may drop a lease its submitter renews).
        lease = self._redis(lambda: lease_state(self.spool, self.jid))
        now = time.monotonic()
        if lease is None or self._lease_gone_since is None:
            self._lease_gone_since = None if lease is None else now
            return
        if now - self._lease_gone_since < lease:
            return
        rows = self._redis(lambda: end_if_abandoned(self.spool, self.jid))
        if rows is not None:
            self.note(
                f"job {self.job.name} ({self.jid}): its submitter stopped renewing the job;"
                f" ended with the {rows} rows it put in"
            )

    def _compose(  # type: ignore[override]
        self, entry: str, msgs: list[RenderedMessage], on_problem: ProblemSink
    ) -> list[RenderedMessage]:
        states = self._redis(lambda: self.spool.states(self.jid, [m.row for m in msgs]))
        if states is None:
            return []  # not acknowledged: taken again after the lease
        todo = [m for m, s in zip(msgs, states, strict=True) if s is None or s == "pending"]
        self.journal.expect(entry, [m.row for m in todo])
        return todo


def consumer_name() -> str:
    """This worker's name in the consumer group: host, process, and a nonce."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def work_job(
    spool: RedisSpool,
    info: JobInfo,
    *,
    consumer: str,
    lease: float = LEASE,
    poll: float = 0.2,
    relay: Relay | None = None,
    stop: asyncio.Event | None = None,
    hard_stop: asyncio.Event | None = None,
    on_problem: ProblemSink,
    note: Callable[[str], None],
    events: IO[bytes] | None = None,
) -> JobSummary:
    """Take the job's batches and due messages until none are left
    (``events``: one JSON line per delivery event appended there)."""
    prepared = is_prepared(info)
    job = prepared_job(spool, info) if prepared else load_job(info.source)
    # A prepared job's messages were signed, and its suppression checked, by
    # its submitter: the worker needs no key, and its lists are empty.
    signer = None if prepared else make_signer(job)
    lists = JobSuppression(job)
    try:
        composer = None
        if signer is not None:
            tracker = lists.tracking.tracker() if lists.tracking is not None else None
            composer = Composer(job, signer, tracker=tracker)
        journal = StreamJournal(spool, info, job)
        source = (_PreparedSource if prepared else _StreamSource)(
            job,
            spool,
            journal,
            lists,
            composer,
            consumer=consumer,
            lease=lease,
            poll=poll,
            note=note,
        )
        return await send(
            source,
            relay,
            on_problem=on_problem,
            check_relay=False,
            stop=stop,
            hard_stop=hard_stop,
            journal=journal,
            events=events,
        )
    finally:
        lists.close()


def forget_gone_consumers(spool: RedisSpool, job: str, idle: float) -> int:
    """Drop consumers of the job's group that hold nothing and have been silent
    for ``idle`` seconds (workers that stopped): the group does not grow forever."""
    key = spool.key(job, "q")
    try:
        gone = [
            c["name"]
            for c in spool.client.xinfo_consumers(key, GROUP)
            if not c["pending"] and c["idle"] > idle * 1000
        ]
        for name in gone:
            spool.client.xgroup_delconsumer(key, GROUP, name)
    except (redis.RedisError, OSError):
        return 0  # no group yet, or Redis away: next time
    return len(gone)


def has_work(spool: RedisSpool, info: JobInfo, now: float) -> bool:
    """Batches to take, or deferred messages due."""
    if info.state == "running" and not progress_of(spool, info.id)[1]:
        return True
    nxt = spool.next_due(info.id)
    return nxt is not None and nxt <= now


async def run_worker(
    spool: RedisSpool,
    *,
    lease: float = LEASE,
    poll: float = 0.2,
    relay: Relay | None = None,
    stop: asyncio.Event,
    hard_stop: asyncio.Event | None = None,
    on_problem: ProblemSink,
    note: Callable[[str], None],
    on_done: Callable[[JobInfo, JobSummary], None] | None = None,
    once: bool = False,
    events: IO[bytes] | None = None,
) -> None:
    """Work on every job in the spool that has work, until ``stop``
    (``once``: until there is no work left)."""
    consumer = consumer_name()
    spool.on_missing_key = note
    tasks: dict[str, asyncio.Task[JobSummary]] = {}
    infos: dict[str, JobInfo] = {}
    failed: dict[str, float] = {}
    down = False
    tidied = time.monotonic()
    note(f"worker {consumer} ready")
    while not stop.is_set():
        now = time.time()
        try:
            jobs = spool.jobs()
            ready = [i for i in jobs if i.id not in tasks and has_work(spool, i, now)]
            if down:
                note("Redis is back")
            down = False
        except SpoolError as exc:
            if not down:
                note(f"Redis unreachable, waiting: {exc}")
            down, ready = True, []
        for info in ready:
            if failed.get(info.id, 0.0) > now:
                continue
            infos[info.id] = info
            tasks[info.id] = asyncio.ensure_future(
                work_job(
                    spool,
                    info,
                    consumer=consumer,
                    lease=lease,
                    poll=poll,
                    relay=relay,
                    stop=stop,
                    hard_stop=hard_stop,
                    on_problem=on_problem,
                    note=note,
                    events=events,
                )
            )
        for jid, task in list(tasks.items()):
            if task.done():
                del tasks[jid]
                try:
                    s = task.result()
                except MailsfluxError as exc:
                    # A job this host cannot run (its files missing here): said once a minute.
                    note(f"job {infos[jid].name} ({jid}): {exc}")
                    failed[jid] = time.time() + 60
                    continue
                with contextlib.suppress(SpoolError):
                    now_info = spool.job(jid)
                    if (
                        now_info is not None
                        and now_info.state == "running"
                        and progress_of(spool, jid)[1]
                    ):
                        spool.end_job(jid, end_state(spool.counts(jid)))
                if on_done is not None:
                    on_done(infos[jid], s)
        if not down and time.monotonic() - tidied > 60:
            tidied = time.monotonic()
            for jid in list(infos):
                forget_gone_consumers(spool, jid, idle=max(10 * lease, 600))
        if once and not tasks and not ready and not down:
            return
        # The next look: after a while, at a stop, or as soon as a job's task
        # ends (an --until-idle worker then exits without waiting a tick).
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            [stopping, *tasks.values()],
            timeout=max(poll, 0.05) * 5,
            return_when=asyncio.FIRST_COMPLETED,
        )
        stopping.cancel()
    if tasks:
        await asyncio.gather(*tasks.values(), return_exceptions=True)


__all__ = [
    "BATCH",
    "GROUP",
    "LEASE",
    "StreamJournal",
    "consumer_name",
    "end_state",
    "enqueue",
    "ensure_group",
    "follow",
    "progress_of",
    "result_of",
    "run_worker",
    "summary_of",
    "work_job",
]
