"""The front doors' one way in: a message accepted is a message stored.

Per tenant the gateway keeps an :class:`~mailsflux.Engine` (the tenant's
DKIM keys, the server's delivery settings, a spool in the tenant's region)
and a :class:`TenantLog`. A message is acknowledged (HTTP 202, SMTP 250)
only when :meth:`Engine.enqueue` has stored it in the spool; from there the
engine sends it, retries it when deferred, and after a crash the next
gateway's engine picks it up. Every call takes the caller's
:class:`~mailsflux.tenants.Principal`: a tenant sees and touches only its
own messages, jobs and events, and another tenant's id is "not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from mailsflux._aio import within
from mailsflux.engine import Config, Engine, Message
from mailsflux.errors import AccessError, ConfigError, MailsfluxError, NotFoundError
from mailsflux.events import Event
from mailsflux.gateway.letters import send_tenant_letters, tenant_carrier, track_tenant_letters
from mailsflux.gateway.log import FINAL, TenantLog
from mailsflux.gateway.metrics import Metrics, TenantStats
from mailsflux.gateway.privacy import Action, address_key, audit, matcher
from mailsflux.gateway.retention import RetentionSpec, add_counts, sweep_tenant, tenant_due
from mailsflux.gateway.sealed import read_rows, write_rows
from mailsflux.jobs.jobfile import DeliverySpec, SpoolSpec
from mailsflux.letters import Carrier, LetterRecipient, LetterSummary
from mailsflux.letters.jobfile import CarrierSpec
from mailsflux.masking import log_text
from mailsflux.spool import SQLiteSpool
from mailsflux.tenants import Principal, Tenant, Tenants
from mailsflux.types import DeliveryResult, Problem

#: A job's rows, sealed (mailsflux.gateway.sealed), in its folder.
ROWS_FILE = "rows.sealed"
_TEMPLATE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: How long results wait in memory before their events are committed.
_FLUSH_AFTER = 0.05


class JobStatus(msgspec.Struct, kw_only=True):
    """``GET /v1/jobs/{id}``: the job's state (queued, running, finished,
    cancelled, failed), rows handed on, counts by event type, messages still
    pending, and the rate results came at."""

    id: str
    name: str
    state: str
    rows: int
    handed_on: int
    counts: dict[str, int]
    pending: int
    rate: float
    created: float
    updated: float


class _Tenant:
    """One tenant's engine, log and running API jobs."""

    def __init__(self, tenant: Tenant, directory: Path, engine: Engine, log: TenantLog) -> None:
        self.tenant = tenant
        self.directory = directory
        self.engine = engine
        self.log = log
        self.feeders: dict[str, asyncio.Task[None]] = {}
        self.cancelled: set[str] = set()
        #: Set when the gateway closes: feeders stop between rows, not inside one.
        self.stopping = False
        self.jobs_of: dict[str, str | None] = {}  # in-flight Message-ID -> job
        #: In-flight Message-ID -> when it was accepted (the delivery histogram).
        self.accepted_at: dict[str, float] = {}
        self.flushing: asyncio.TimerHandle | None = None
        self.lock: IO[bytes] | None = None

    def close(self) -> None:
        """After its engine was left: the log written and closed, the lock let go."""
        if self.flushing is not None:
            self.flushing.cancel()
        with contextlib.suppress(Exception):
            self.log.close()
        if self.lock is not None:
            self.lock.close()


class Gateway:
    """Accept messages and jobs for tenants; answer what became of them."""

    def __init__(
        self,
        tenants: Tenants,
        *,
        data_dir: Path | str,
        delivery: DeliverySpec | None = None,
        regions: Mapping[str, str] | None = None,
        fsync: bool = False,
        engine_options: Mapping[str, Any] | None = None,
        metrics: Metrics | None = None,
        sole: bool = False,
        letters: CarrierSpec | None = None,
    ) -> None:
        self.tenants = tenants
        #: The carrier letters go to (``[letters]``); None: no letters here.
        self.letters = letters
        self.data_dir = Path(data_dir)
        self.delivery = delivery or DeliverySpec()
        self.regions = dict(regions or {})
        self.fsync = fsync
        # Accepting must not depend on the relay: what it cannot take now
        # waits in the spool (the server checks the relay once at start).
        self.engine_options = {"check_relay": False, **(engine_options or {})}
        #: No other gateway runs on this data (the server holds its lock):
        #: what a crashed one held is sent at once, not after the claim.
        self.sole = sole
        self._open: dict[str, _Tenant] = {}
        self.metrics = metrics or Metrics()
        self.metrics.watch_spools(self._spools)
        for t in tenants:
            if t.region != "default" and t.region not in self.regions:
                raise ConfigError(
                    f"tenant {t.name!r}: region {t.region!r} is not in [regions]",
                    field="tenants.region",
                )

    def _spools(self) -> Iterator[TenantStats]:
        for name, state in list(self._open.items()):
            engine = state.engine
            yield name, state.directory / "spool", engine.in_flight(), engine.site_stats()

    def tenants_open(self) -> list[str]:
        """The tenants this gateway serves now."""
        return list(self._open)

    @property
    def ready(self) -> bool:
        """Every tenant's engine is open (``/readyz``)."""
        return bool(self._open)

    def tenant_dir(self, tenant: Tenant) -> Path:
        return tenant_dir(tenant, self.data_dir, self.regions)

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        try:
            for t in self.tenants:
                await self._open_tenant(t)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _open_tenant(self, t: Tenant) -> None:
        directory = self.tenant_dir(t)
        spool_dir = directory / "spool"
        config = Config(
            name=f"tenant-{t.name}",
            dkim=list(t.dkim),
            delivery=self.delivery,
            spool=SpoolSpec(dir=str(spool_dir), fsync=self.fsync),
            tracking=t.tracking,
            base=str(directory),
        )
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = lock_dir(directory, f"tenant {t.name}") if self.sole else None
        log = TenantLog.of(directory, t.name, durable=self.fsync)
        state: _Tenant | None = None

        def on_result(r: DeliveryResult) -> None:
            assert state is not None
            self._result(state, r)

        engine = Engine(config, on_result=on_result, **self.engine_options)
        state = _Tenant(t, directory, engine, log)
        state.lock = lock
        if self.sole:
            engine.reclaim()
        await engine.__aenter__()
        self._open[t.name] = state
        log.release_unanswered()
        for job_id in log.abandoned_jobs():  # cut off while written: never answered
            shutil.rmtree(directory / "jobs" / job_id, ignore_errors=True)
        for job_id in log.unfinished_jobs():  # a stopped server's jobs go on
            self._start_feeder(state, job_id)

    async def __aexit__(self, *exc: object) -> None:
        """Stop feeding jobs (between rows), let the engines finish what they
        hold within ``stop_grace`` (all at once), close."""
        grace = self.delivery.stop_grace
        for state in self._open.values():
            state.stopping = True
        feeders = [t for state in self._open.values() for t in state.feeders.values()]
        if feeders:
            _, late = await asyncio.wait(feeders, timeout=grace)
            for task in late:  # stuck on a full scheduler: the row is redone at start
                task.cancel()
            await asyncio.gather(*feeders, return_exceptions=True)

        async def leave(state: _Tenant) -> None:
            # What is not sent within the grace stays in the spool, and the
            # next start sends it: a stop need not wait for a slow site.
            with contextlib.suppress(TimeoutError):
                await within(state.engine.__aexit__(None, None, None), grace)

        states = list(self._open.values())
        self._open.clear()
        try:
            await asyncio.gather(*(leave(s) for s in states), return_exceptions=True)
        finally:
            for state in states:
                state.close()

    # -- access ------------------------------------------------------------------

    def _state(self, principal: Principal, role: str) -> _Tenant:
        if not principal.may(role):
            raise AccessError(
                f"this key lacks the {role!r} role", code=403, enhanced_status="5.7.1"
            )
        state = self._open.get(principal.tenant)
        if state is None:
            raise AccessError("this key's tenant does not exist", code=403, enhanced_status="5.7.1")
        return state

    def sender_allowed(self, principal: Principal, address: str) -> bool:
        """Whether ``principal``'s tenant may send as ``address``."""
        state = self._open.get(principal.tenant)
        return state is not None and state.tenant.owns(address)

    def _check_sender(self, state: _Tenant, address: str) -> None:
        if not state.tenant.owns(address):
            raise AccessError(
                f"sender {address!r} is not in this tenant's domains",
                field="sender",
                code=403,
                enhanced_status="5.7.1",
            )

    # -- accepting ---------------------------------------------------------------

    async def accept(self, principal: Principal, message: Message) -> str:
        """Store one message for delivery; returns its id once it is durable."""
        state = self._state(principal, "send")
        self._check_sender(
            state, _address(message.sender)
        )  # fails fast; the rendered one is checked too
        mid = await state.engine.enqueue(message, senders=state.tenant.owns)
        state.log.queued(mid, _address(message.to))
        state.accepted_at.setdefault(mid, time.monotonic())
        self._flush_soon(state)
        return mid

    async def accept_raw(
        self, principal: Principal, mail_from: str, rcpt_to: Sequence[str], data: bytes
    ) -> list[str]:
        """A finished message (SMTP submission): signed, stored once per
        recipient; returns its Message-ID once every copy is durable."""
        state = self._state(principal, "send")
        self._check_sender(state, mail_from)
        mid = await state.engine.enqueue_raw(mail_from, rcpt_to, data, senders=state.tenant.owns)
        for rcpt in rcpt_to:
            state.log.queued(mid, rcpt)
        state.accepted_at.setdefault(mid, time.monotonic())
        self._flush_soon(state)
        return [mid]

    async def submit_job(
        self,
        principal: Principal,
        template: Message,
        rows: Iterator[bytes],
        *,
        name: str = "",
    ) -> str:
        """A template and its recipients (JSON rows, one per line of ``rows``,
        written to disk as they come) as a job; returns its id once stored."""
        state = self._state(principal, "send")
        self._check_sender(state, _address(template.sender))
        if template.attachments or template.inline_images:
            raise ConfigError("a job's template cannot have attachments", field="template")
        job_id = "job_" + secrets.token_hex(8)
        where = state.directory / "jobs" / job_id
        # Recorded first ("writing"): a retention sweep leaves its folder
        # alone, and a crash before the answer leaves a job marked failed.
        state.log.add_job(job_id, name or job_id, 0, _encode_template(template), "writing")

        def write() -> int:
            """Rows to disk, sealed (in a thread: a big upload must not stall the loop)."""
            where.mkdir(parents=True, mode=0o700)
            return write_rows(where / ROWS_FILE, job_id, rows, state.log.keys)

        try:
            total = await asyncio.to_thread(write)
        except BaseException:
            shutil.rmtree(where, ignore_errors=True)
            state.log.drop_job(job_id)
            raise
        state.log.job_written(job_id, total)
        self._start_feeder(state, job_id)
        return job_id

    def upload_path(self, principal: Principal) -> Path:
        """Where an upload of ``principal``'s tenant goes while it arrives."""
        state = self._state(principal, "send")
        where = state.directory / "uploads"
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        return where / secrets.token_hex(8)

    def _start_feeder(self, state: _Tenant, job_id: str) -> None:
        task = asyncio.ensure_future(self._feed(state, job_id))
        state.feeders[job_id] = task
        task.add_done_callback(lambda _: state.feeders.pop(job_id, None))

    async def _feed(self, state: _Tenant, job_id: str) -> None:
        """Hand a job's rows to the engine one by one, after the last one a
        stopped server handed on."""
        job = state.log.job(job_id)
        assert job is not None
        try:
            await self._feed_rows(state, job_id, job.next_row, _decode_template(job.template))
        except Exception as exc:  # a job that cannot go on is marked so, not lost silently
            print(log_text(f"mailsflux: job {job_id} stopped: {exc}"), file=sys.stderr)
            state.log.set_job_state(job_id, "failed")

    async def _feed_rows(self, state: _Tenant, job_id: str, done: int, template: Message) -> None:
        state.log.set_job_state(job_id, "running")
        path = state.directory / "jobs" / job_id / ROWS_FILE
        n = done
        for line in read_rows(path, job_id, state.log.keys, after=done):
            if job_id in state.cancelled or state.stopping:
                break
            n += 1
            mid, rcpt, problem = "", "", ""
            message = None
            try:
                message = _row_message(template, msgspec.json.decode(line))
                rcpt = _address(message.to)
            except MailsfluxError as exc:
                problem = f"row {n}: {exc.message}"
            pause = 0.05
            while message is not None:
                try:
                    mid = await state.engine.enqueue(message, senders=state.tenant.owns)
                    break
                except MailsfluxError as exc:
                    if not exc.temporary:
                        # A rejected event, not a log line: logs hold no addresses.
                        problem = f"row {n}: {exc.message}"
                        break
                    if state.stopping:
                        return  # this row was not handed on: the next start does it
                    await asyncio.sleep(pause)  # a full disk, a locked spool: wait, then again
                    pause = min(pause * 2, 5.0)
            if problem:
                mid = f"{job_id}.{n}"
            state.log.job_row_done(job_id, n, mid, rcpt, problem)
            if not problem:
                state.jobs_of[mid] = job_id
        if state.stopping:
            return
        state.log.set_job_state(job_id, "cancelled" if job_id in state.cancelled else "finished")
        # Every row is in the spool now (or was refused): the rows are not kept.
        path.unlink(missing_ok=True)

    # -- results -----------------------------------------------------------------

    def _result(self, state: _Tenant, r: DeliveryResult) -> None:
        if r.status in ("suppressed", "skipped") and r.attempts == 0:
            # Suppressed before it was stored: the engine says so while the
            # caller is still being accepted; recorded after its "queued".
            asyncio.get_running_loop().call_soon(self._record, state, r)
            return
        self._record(state, r)

    def _record(self, state: _Tenant, r: DeliveryResult) -> None:
        job = state.jobs_of.get(r.message_id, "") if r.message_id else None
        if job == "":
            job = state.log.job_of(r.message_id)
        if r.status in FINAL or r.status == "skipped":
            state.jobs_of.pop(r.message_id, None)
        accepted = state.accepted_at.pop(r.message_id, None)
        if accepted is not None:
            self.metrics.delivery.observe(time.monotonic() - accepted)
        state.log.result(r, job)
        self.metrics.results.labels(r.status).inc()
        self._flush_soon(state)

    def _flush_soon(self, state: _Tenant) -> None:
        if state.flushing is None:
            loop = asyncio.get_running_loop()
            state.flushing = loop.call_later(_FLUSH_AFTER, self._flush, state)

    def _flush(self, state: _Tenant) -> None:
        state.flushing = None
        try:
            state.log.flush()
        except Exception as exc:  # a full disk: the events stay buffered
            print(log_text(f"mailsflux: cannot write events: {exc}"), file=sys.stderr)

    # -- letters -----------------------------------------------------------------

    async def submit_letters(
        self,
        principal: Principal,
        *,
        name: str,
        template: str,
        rows: list[LetterRecipient | Problem],
        paper: str = "A4",
        sender: str = "",
        origin_country: str = "",
    ) -> tuple[LetterSummary, list[Problem]]:
        """Render and hand over a request's letters; a ``name`` given again
        hands over only the references it has not seen (a retried request)."""
        state = self._state(principal, "send")
        if self.letters is None:
            raise ConfigError("letters are not set up here ([letters] in the server config)")
        spec = self.letters
        loop = asyncio.get_running_loop()

        return await asyncio.to_thread(
            send_tenant_letters,
            state.directory / "letters",
            state.log.keys,
            self._carrier(state),
            spec,
            name=name,
            template=template,
            rows=rows,
            paper=paper,
            sender=sender,
            origin_country=origin_country,
            on_event=self._letter_events(state, loop),
        )

    def _carrier(self, state: _Tenant) -> Carrier:
        assert self.letters is not None
        key = os.environ.get(self.letters.api_key_env, "") if self.letters.api_key_env else ""
        return tenant_carrier(self.letters, state.tenant.name, key)

    def _letter_events(
        self, state: _Tenant, loop: asyncio.AbstractEventLoop
    ) -> Callable[[Event], None]:
        """Events from a worker thread into the tenant's log, in the loop."""

        def logged(e: Event) -> None:
            state.log.add(e.type, e.message_id, e.recipient, e.job, e.details)
            self._flush_soon(state)

        def from_thread(e: Event) -> None:
            loop.call_soon_threadsafe(logged, e)

        return from_thread

    async def track_letters(self, spec: RetentionSpec, now: float | None = None) -> dict[str, int]:
        """Every tenant's open letters asked about at the carrier (events into
        its log), and addresses past ``letter_days`` after delivery deleted."""
        total: dict[str, int] = {}
        if self.letters is None:
            return total
        loop = asyncio.get_running_loop()
        for state in list(self._open.values()):
            try:
                part = await asyncio.to_thread(
                    track_tenant_letters,
                    state.directory / "letters",
                    state.log.keys,
                    self._carrier(state),
                    self._letter_events(state, loop),
                    letter_days=spec.letter_days,
                    letter_max_days=spec.letter_max_days,
                    now=now,
                )
            except Exception as exc:  # one tenant's failure does not stop the others'
                why = exc.message if isinstance(exc, MailsfluxError) else type(exc).__name__
                print(f"mailsflux: letters of {state.directory.name}: {why}", file=sys.stderr)
                continue
            add_counts(total, part)
        return total

    # -- a person's rights --------------------------------------------------------

    async def privacy(
        self,
        principal: Principal,
        action: Action,
        address: str,
        *,
        to: str | None = None,
        withdraw: bool = False,
    ) -> dict[str, Any]:
        """Export, erase, correct or object, in this tenant's stores only (the
        admin role); audited in the tenant's folder without the address."""
        state = self._state(principal, "admin")
        key = address_key(address)
        new = address_key(to, "to") if action == "correct" and to is not None else None
        if action == "correct" and new is None:
            raise ConfigError("correct needs the new address", field="to")
        store = state.engine.tracking_store
        if action == "object" and store is None:
            raise ConfigError(
                "this tenant has no tracking store ([tenants.tracking]): nothing tracks it",
                field="address",
            )
        match = matcher(key)
        erase = action == "erase"

        def work() -> dict[str, Any]:
            doc: dict[str, Any] = {"address": key, "tenant": state.tenant.name}
            counts: dict[str, int] = {}
            if action != "object":
                with SQLiteSpool(state.directory / "spool") as spool:
                    records = spool.person(match, erase=erase, correct=new)
                events = state.log.person(match, erase=erase, correct=new)
                counts |= {"spool": len(records), "events": len(events)}
                if action == "export":
                    doc |= {"spool": records, "events": msgspec.to_builtins(events)}
                if state.engine.redis is not None:
                    waiting = _redis_person(state.engine, match, erase=erase, correct=new)
                    # A row it could not correct is named, not counted.
                    counts["redis"] = sum(w.get("corrected", True) for w in waiting)
                    if action == "export" or len(waiting) > counts["redis"]:
                        doc["redis"] = waiting
            if store is not None:
                if action == "export":
                    doc["tracking"] = store.export(key)
                elif action == "erase":
                    counts["tracking"] = store.erase(key)
                elif action == "correct" and new is not None:
                    moved = store.suppression(key)
                    if moved is not None:  # the opt-out follows the person
                        store.suppress(new, reason=moved.reason)
                    counts["suppression"] = int(moved is not None)
                elif action == "object":
                    store.set_tracking_objection(key, not withdraw)
                    counts["objection"] = int(not withdraw)
            audit(state.directory, action, key, counts, by=principal.key_id)
            doc["counts"] = counts
            return doc

        return await asyncio.to_thread(work)

    # -- retention ---------------------------------------------------------------

    async def sweep(
        self,
        spec: RetentionSpec,
        now: float | None = None,
        cancelled: dict[str, float] | None = None,
        failed: list[str] | None = None,
    ) -> dict[str, int]:
        """Every tenant's spool, log and job folders, by ``spec`` (in a
        thread); a tenant ``cancelled`` ``account_days`` ago is closed and its
        folder deleted (``tenants_deleted`` names how many). With ``failed``,
        a tenant that cannot be swept is named there and the others still are."""
        when = time.time() if now is None else now
        total: dict[str, int] = {}
        for name in [n for n in self._open if tenant_due(cancelled or {}, n, spec, when)]:
            await self._delete_tenant(name)
            total["tenants_deleted"] = total.get("tenants_deleted", 0) + 1
        for name, state in list(self._open.items()):
            try:
                part = await asyncio.to_thread(sweep_tenant, state.directory, state.log, spec, when)
            except Exception as exc:
                if failed is None:
                    raise
                failed.append(f"tenant {name}: {exc}")
                continue
            add_counts(total, part)
        add_counts(total, await self.track_letters(spec, when))
        return total

    async def _delete_tenant(self, name: str) -> None:
        """Close a tenant and delete everything of it under its folder."""
        state = self._open.pop(name)
        state.stopping = True
        for task in state.feeders.values():
            task.cancel()
        await asyncio.gather(*state.feeders.values(), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await within(state.engine.__aexit__(None, None, None), self.delivery.stop_grace)
        state.close()
        await asyncio.to_thread(shutil.rmtree, state.directory, True)

    # -- reading -----------------------------------------------------------------

    def job(self, principal: Principal, job_id: str) -> JobStatus:
        state = self._state(principal, "read")
        row = state.log.job(job_id)
        if row is None:
            raise NotFoundError("no job with this id", code=404)
        counts = state.log.job_counts(job_id)
        done = sum(counts.get(k, 0) for k in FINAL)
        elapsed = max(row.updated - row.created, 1e-9)
        return JobStatus(
            id=row.id,
            name=row.name,
            state=row.state,
            rows=row.total,
            handed_on=row.next_row,
            counts=counts,
            pending=max(counts.get("queued", 0) - done, 0),
            rate=done / elapsed,
            created=row.created,
            updated=row.updated,
        )

    async def cancel_job(self, principal: Principal, job_id: str) -> JobStatus:
        """Stop handing on the job's rows; what was handed on is still sent."""
        state = self._state(principal, "send")
        if state.log.job(job_id) is None:
            raise NotFoundError("no job with this id", code=404)
        state.cancelled.add(job_id)
        task = state.feeders.get(job_id)
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        else:
            row = state.log.job(job_id)
            if row is not None and row.state in ("queued", "running"):
                state.log.set_job_state(job_id, "cancelled")
        return self.job(principal, job_id)

    def put_template(self, principal: Principal, template_id: str, body: bytes) -> float:
        """Store a template (the API's JSON) under ``template_id`` for the tenant."""
        if not _TEMPLATE_ID.fullmatch(template_id):
            raise ConfigError(
                "a template id is 1 to 64 of a-z, A-Z, 0-9, '.', '_' and '-'", field="id"
            )
        return self._state(principal, "send").log.put_template(template_id, body)

    def template(self, principal: Principal, template_id: str) -> tuple[bytes, float]:
        found = self._state(principal, "read").log.template(template_id)
        if found is None:
            raise NotFoundError("no template with this id", code=404, field="template_id")
        return found

    def message(self, principal: Principal, message_id: str) -> list[Event]:
        state = self._state(principal, "read")
        state.log.flush()
        found = state.log.events(message_id=message_id, limit=1000)
        if not found:
            raise NotFoundError("no message with this id", code=404)
        return found

    def events(self, principal: Principal, after: int, limit: int) -> list[Event]:
        state = self._state(principal, "read")
        state.log.flush()
        return state.log.events(after=after, limit=limit)

    def tenant_log(self, tenant: str) -> TenantLog:
        """A tenant's log, for the server's own readers (webhooks), not for callers."""
        return self._open[tenant].log

    def log(self, principal: Principal) -> TenantLog:
        """The caller's tenant log (idempotency answers)."""
        return self._state(principal, "send").log


_STORED = ("attachments", "inline_images")


def _encode_template(template: Message) -> bytes:
    """A job's template as stored (attachments are refused before)."""
    return msgspec.json.encode(
        {f: getattr(template, f) for f in template.__struct_fields__ if f not in _STORED}
    )


def _decode_template(blob: bytes) -> Message:
    fields = msgspec.json.decode(blob)
    fields["tags"] = tuple(fields["tags"])
    return Message(**fields)


def lock_dir(directory: Path, what: str) -> IO[bytes]:
    """An exclusive lock on ``directory`` (held while the returned file is open):
    one server at a time takes over what a crashed one held there."""
    f = (directory / "lock").open("ab")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ConfigError(
            f"{what}: another mailsflux serve is using {directory}", field="data_dir"
        ) from None
    return f


def tenant_dir(tenant: Tenant, data_dir: Path, regions: Mapping[str, str]) -> Path:
    """Where a tenant's data lives: its region's root (else the data dir)."""
    root = Path(regions[tenant.region]) if tenant.region in regions else data_dir
    return root / "tenants" / tenant.name


def _address(mailbox: str) -> str:
    """``Name <a@b>`` -> ``a@b``."""
    if "<" in mailbox:
        return mailbox[mailbox.rfind("<") + 1 :].split(">", 1)[0].strip()
    return mailbox.strip()


def _row_message(template: Message, row: Any) -> Message:
    """A job row (an address, or an object with ``email``, ``name`` and
    variables) as the template's message to that recipient."""
    if isinstance(row, str):
        return msgspec.structs.replace(template, to=row)
    if not isinstance(row, dict) or not isinstance(row.get("email"), str):
        raise ConfigError("a row is an address or an object with an email", field="email")
    name = row.get("name")
    to = f"{name} <{row['email']}>" if isinstance(name, str) and name else row["email"]
    return msgspec.structs.replace(template, to=to, data={**template.data, **row})


def request_digest(body: bytes, *parts: str) -> str:
    """What identifies a request for idempotency: its route and body."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\x00")
    h.update(body)
    return h.hexdigest()


def _redis_person(
    engine: Engine, match: Callable[[str], bool], *, erase: bool, correct: str | None
) -> list[dict[str, Any]]:
    """One person's rows in the jobs this tenant's engine put into Redis
    (``serve`` with ``[redis]``): its API jobs and its outbox, no other tenant's."""
    from mailsflux.jobs.redis_batches import SOURCE
    from mailsflux.jobs.redis_privacy import person
    from mailsflux.spool.redis_spool import RedisSpool

    with RedisSpool(
        engine.redis or "", prefix=engine.redis_prefix, key_file=engine.key_file
    ) as spool:
        return person(spool, match, erase=erase, correct=correct, source=SOURCE + engine.origin)
