"""Prepared jobs in Redis: messages composed and signed by the submitter.

A job file's rows go into Redis as data, and each worker composes and signs
them with the job directory's templates and key (:mod:`.worker`). A batch
built in code (``Engine(redis=URL).submit(Batch)``) has no job directory the
workers could read, so the engine composes and DKIM-signs each message
itself and puts the signed bytes into the job's stream instead, sealed with
the spool key ring (AES-256-GCM, bound to the job and the entry's first row,
as deferred bodies are). Workers deliver them as they are: they need no
templates and no DKIM key, only the shared key file.

The job's delivery settings (relay, rates, retry schedule, throttle; the
relay URL may hold a password) are sealed under the job's ``spec`` key. The
job is marked by its :attr:`JobInfo.source` starting with :data:`SOURCE`.
Every key carries the job's hash tag, as for any job.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from mailsflux.errors import SpoolError
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec, Job, JobSpec, MessageSpec, RecipientsSpec
from mailsflux.spool import JobInfo, Record
from mailsflux.spool.redis_spool import UNREADABLE, RedisSpool
from mailsflux.types import RenderedMessage

#: ``JobInfo.source`` of a prepared job starts so (then the submitter's name).
SOURCE: Final = "prepared:"
#: The stream a prepared job's workers announce final rows on (``rows``: "3,4,9").
RESULTS: Final = "res"
#: Messages in one stream entry at most, and about how many bytes.
COUNT: Final = 64
SIZE: Final = 1 << 20
#: Entries waiting in the stream before the submitter waits for the workers:
#: Redis holds a window of the batch, not all of it.
WINDOW: Final = 64
#: Seconds a Batch's submitter holds its job open without renewing (a
#: thread of its own renews every third of this while it puts messages
#: in, retrying through a Redis outage). A worker that finds the lease gone
#: and still gone a whole lease later (by its own clock: a restarted Redis
#: may have dropped it) takes the submitter for gone (its process died
#: mid-batch) and ends the job with the messages it put in, rather than
#: watch it for ever. The engine's outbox job has no lease: its engine
#: reopens it.
FEED_LEASE: Final = 60.0

#: A leased job's keys: the lease's length (set while it may take more),
#: the lease itself (expires), and its end.
FEED_KEYS: Final = ("feeder", "feed", "end")

#: KEYS: feeder, feed, end, enq. A leased job (``feeder`` set) whose lease
#: (``feed``) is gone and which has not ended: ended now; returns the last
#: row put in (nil when the job is not such a job).
ABANDONED_LUA: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0
   and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], 1)
  redis.call('DEL', KEYS[1])
  return redis.call('GET', KEYS[4]) or '0'
end
return false
"""

#: KEYS: q, enq, feeder. ARGV: leased (1/0), last row, then the entry's
#: fields (none: no entry). An entry goes in only while a leased job is
#: still open (``feeder``): one the workers ended takes no more. 0 if not.
PUT_LUA: Final = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if #ARGV > 2 then redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3)) end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

#: KEYS: end, feed, feeder. ARGV: leased (1/0). Ends the job unless the
#: workers ended a leased one already (then 0: its total is theirs).
FINISH_LUA: Final = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('SET', KEYS[1], 1)
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""

_spec_enc = msgspec.msgpack.Encoder()
_spec_dec = msgspec.msgpack.Decoder(DeliverySpec)
_msgs_enc = msgspec.msgpack.Encoder()
_msgs_dec = msgspec.msgpack.Decoder(list[RenderedMessage])


def is_prepared(info: JobInfo) -> bool:
    return info.source.startswith(SOURCE)


def batch_ctx(job: str, first: int) -> bytes:
    """What a stream entry's sealed bytes are bound to: the job and its first row."""
    return f"{job}\x00batch\x00{first}".encode()


def _spec_ctx(job: str) -> bytes:
    return f"{job}\x00spec".encode()


def open_messages(spool: RedisSpool, job: str, first: int, sealed: bytes) -> list[RenderedMessage]:
    """A prepared entry's messages (raises one of ``UNREADABLE`` when it cannot be opened)."""
    return _msgs_dec.decode(spool.keys.open(sealed, batch_ctx(job, first)))


def prepared_job(spool: RedisSpool, info: JobInfo) -> Job:
    """The job a worker sends a prepared job's messages under: its sealed
    delivery settings; no message, recipients or key (the bytes are signed)."""
    sealed = spool._do("read", spool.client.get, spool.key(info.id, "spec"))
    if not isinstance(sealed, bytes):
        raise SpoolError(f"prepared job {info.id}: its settings are missing from Redis")
    try:
        delivery = _spec_dec.decode(spool.keys.open(sealed, _spec_ctx(info.id)))
    except UNREADABLE as exc:
        raise SpoolError(f"prepared job {info.id}: its settings do not open: {exc}") from None
    spec = JobSpec(
        name=info.name,
        message=MessageSpec(sender="", subject=""),
        recipients=RecipientsSpec(file=""),
        dkim=DKIMSpec(domain="invalid", selector="none", key=""),
        delivery=delivery,
    )
    return Job(spec, Path(f"<batch {info.name}>"))


class BatchWriter:
    """Puts one prepared job's messages into Redis (blocking calls: run them
    in a thread). Rows are numbered by the submitter and never reused; the
    workers' consumer group is the caller's to create (:func:`.worker.ensure_group`)."""

    def __init__(
        self,
        spool: RedisSpool,
        name: str,
        origin: str,
        delivery: DeliverySpec,
        *,
        job_id: str | None = None,
        lease: float | None = None,
    ) -> None:
        self.spool = spool
        #: Seconds the job stays open between :meth:`renew` calls (None: for ever).
        self.lease = lease
        info = JobInfo(
            id=job_id or "batch-" + secrets.token_hex(8),
            name=name,
            source=SOURCE + origin,
            fingerprint="prepared",
        )
        self.info = spool.begin_job(info)
        jid = self.id = self.info.id
        sealed = spool.keys.seal(_spec_enc.encode(delivery), _spec_ctx(jid))
        pipe = spool.client.pipeline(transaction=True)
        pipe.set(spool.key(jid, "spec"), sealed)
        if lease is not None:
            # ``feeder`` holds the lease's length: how long a worker waits
            # once it finds ``feed`` gone.
            pipe.set(spool.key(jid, "feeder"), repr(lease))
            pipe.set(spool.key(jid, "feed"), 1, px=int(lease * 1000))
        spool._do("write", pipe.execute)
        self.last = 0
        self._put = spool.client.register_script(PUT_LUA)
        self._finish = spool.client.register_script(FINISH_LUA)
        #: Set once the workers ended this job (its lease had run out):
        #: nothing more can go in.
        self.ended = threading.Event()
        self._renewing: threading.Thread | None = None
        self._stop = threading.Event()

    def renew(self) -> bool:
        """Hold the job open for another lease; False when the workers have
        ended it meanwhile (this submitter was silent past its lease)."""
        if self.lease is None:
            return True
        spool, jid = self.spool, self.id
        pipe = spool.client.pipeline(transaction=True)
        pipe.exists(spool.key(jid, "feeder"))
        pipe.set(spool.key(jid, "feed"), 1, px=int(self.lease * 1000))
        if not spool._do("write", pipe.execute)[0]:
            spool._do("write", spool.client.delete, spool.key(jid, "feed"))
            self.ended.set()
            return False
        return True

    def start_renewing(self) -> None:
        """Renew the lease from a thread of its own every third of it, until
        :meth:`finish`: an event loop held up by a slow synchronous source
        does not hold it up, and a Redis outage is retried, not given up."""
        if self.lease is None or self._renewing is not None:
            return
        lease = self.lease

        def run() -> None:
            wait = lease / 3
            while not self._stop.wait(wait):
                try:
                    if not self.renew():
                        return
                    wait = lease / 3
                except SpoolError:
                    wait = min(1.0, lease / 10)  # Redis away: again soon

        self._renewing = threading.Thread(target=run, name=f"lease {self.id}", daemon=True)
        self._renewing.start()

    def check_open(self) -> None:
        """SpoolError once the workers ended this job: what is left would never be sent."""
        if self.ended.is_set():
            raise SpoolError(
                f"job {self.info.name!r} ({self.id}) was ended by the workers: this submitter"
                f" did not renew it within {self.lease or 0:g} s"
            )

    def put(self, msgs: Sequence[RenderedMessage], skipped: Sequence[Record]) -> None:
        """One stream entry of ``msgs`` (rows ascending), and rows skipped as
        they were built. SpoolError once the workers ended the job."""
        spool, jid = self.spool, self.id
        self.check_open()
        fields: list[Any] = []
        if msgs:
            first = msgs[0].row
            sealed = spool.keys.seal(_msgs_enc.encode(list(msgs)), batch_ctx(jid, first))
            # ``n`` and ``at`` (row numbers, not personal): what an entry that
            # cannot be opened leaves unsent, each row then recorded and announced.
            at = ",".join(str(m.row) for m in msgs)
            fields = ["first", first, "n", len(msgs), "at", at, "rows", sealed]
        last = max([self.last, *(m.row for m in msgs), *(r.row for r in skipped)])
        leased = "1" if self.lease is not None else "0"
        keys = [spool.key(jid, "q"), spool.key(jid, "enq"), spool.key(jid, "feeder")]
        if not spool._do("write", self._put, keys=keys, args=[leased, last, *fields]):
            self.ended.set()
            self.check_open()
        self.last = last
        if skipped:
            spool.store(jid, skipped)

    def add(self, msgs: Sequence[RenderedMessage]) -> list[RenderedMessage]:
        """``msgs`` under new rows (from the job's ``seq``), in one stream entry;
        returns them with their rows once Redis has them."""
        if not msgs:
            return []
        spool = self.spool
        top = int(spool._do("write", spool.client.incrby, spool.key(self.id, "seq"), len(msgs)))
        out = [msgspec.structs.replace(m, row=top - len(msgs) + 1 + i) for i, m in enumerate(msgs)]
        self.put(out, [])
        return out

    def reopen(self) -> None:
        """A long-lived job (an engine's one-off messages) takes more: not ended."""
        self.spool._do("write", self.spool.client.delete, self.spool.key(self.id, "end"))

    def waiting(self) -> int:
        """Entries in the stream not yet settled by the workers."""
        return int(self.spool._do("read", self.spool.client.xlen, self.spool.key(self.id, "q")))

    def finish(self) -> None:
        """Every message is in: followers may now see the job end (unless
        the workers ended it already, with what they found in)."""
        self._stop.set()
        if self._renewing is not None:
            self._renewing.join()
        spool, jid = self.spool, self.id
        leased = "1" if self.lease is not None else "0"
        keys = [spool.key(jid, "end"), spool.key(jid, "feed"), spool.key(jid, "feeder")]
        if spool._do("write", self._finish, keys=keys, args=[leased]):
            spool.set_total(jid, self.last)


def lease_state(spool: RedisSpool, job: str) -> float | None:
    """A leased job's lease length while its lease is gone and the job not
    ended (its submitter may be gone); None otherwise."""
    k = spool.key
    feeder, feed, end = spool._do("read", spool.client.mget, [k(job, x) for x in FEED_KEYS])
    if feeder is None or feed is not None or end is not None:
        return None
    try:
        return float(feeder)
    except ValueError:
        return FEED_LEASE


def end_if_abandoned(spool: RedisSpool, job: str) -> int | None:
    """End a Batch job whose submitter's lease is gone (see :data:`FEED_LEASE`;
    the caller has waited a lease since it first found it gone); the rows it
    put in are the job. Returns how many rows that is, or None when the job
    is not such a job."""
    k = spool.key
    script = spool.client.register_script(ABANDONED_LUA)
    last = spool._do("write", script, keys=[k(job, x) for x in (*FEED_KEYS, "enq")])
    if last is None:
        return None
    total = int(last)
    spool.set_total(job, total)
    return total


def skipped(row: int, *, suppressed: bool) -> Record:
    return Record(row=row, state="suppressed" if suppressed else "skipped", updated=time.time())


__all__ = [
    "COUNT",
    "FEED_LEASE",
    "RESULTS",
    "SIZE",
    "SOURCE",
    "WINDOW",
    "BatchWriter",
    "batch_ctx",
    "end_if_abandoned",
    "is_prepared",
    "lease_state",
    "open_messages",
    "prepared_job",
    "skipped",
]
