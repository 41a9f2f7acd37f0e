"""The Engine: transactional sends and batch jobs through one set of sessions.

One long-lived :class:`~mailsflux.delivery.scheduler.Scheduler` carries every
``send()``; its results are routed to per-message futures by Message-ID.
Batch jobs (``submit()``) run the same path the CLI's ``send`` runs
(:func:`mailsflux.jobs.run.send`). Every message, one-off or batch, is
composed by a :class:`~mailsflux.jobs.composer.Composer`: rendered, tracked,
assembled and DKIM-signed the same way, after the suppression check.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Hashable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, cast

import msgspec

from mailsflux._group import GroupCommit
from mailsflux.authcheck import Checker
from mailsflux.compose import Attachment as MimeAttachment
from mailsflux.compose import parse_address, split_mailbox
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.probe import probe
from mailsflux.delivery.relay import Relay
from mailsflux.delivery.scheduler import Scheduler
from mailsflux.dkim import Signer
from mailsflux.dkim.keys import ascii_domain
from mailsflux.engine.config import Config, DKIMKey, Tracking
from mailsflux.engine.message import Attachment, Batch, Message, Row
from mailsflux.engine.submitted import header_addresses, new_message_id, prepare_submitted
from mailsflux.errors import (
    AccessError,
    ConfigError,
    DKIMError,
    HeaderError,
    MailsfluxError,
    SchedulerClosedError,
)
from mailsflux.events import Event, result_event
from mailsflux.jobs.composer import Composer, Sources, content_type
from mailsflux.jobs.jobfile import Job, JobSpec, MessageSpec, RecipientsSpec
from mailsflux.jobs.journal import Journal, open_spool, spool_dir
from mailsflux.jobs.prepared import Prepared, make_signer, tracking_config
from mailsflux.jobs.progress import Progress
from mailsflux.jobs.rows import ProblemSink
from mailsflux.jobs.run import Source, scheduler_for, send
from mailsflux.jobs.suppression import Suppression, read_list
from mailsflux.masking import log_text
from mailsflux.spool import JobInfo
from mailsflux.tracking.events import EventStore
from mailsflux.tracking.tracker import Tracker
from mailsflux.types import DeliveryResult, JobSummary, Problem, Recipient, RenderedMessage

if TYPE_CHECKING:
    # Loaded only by an engine with ``redis`` (it brings the Redis client).
    from mailsflux.engine.outbox import Outbox

    # The letters stage needs the `letters` extra: imported when a letter job runs.
    from mailsflux.letters import Carrier, LetterJob, LetterSummary

#: The row key the recipient's display name travels under: no template
#: variable can be called this, so it never clashes with the caller's data.
_NAME = "\x00to-name"
#: With ``template=False`` the content is passed as data to these templates.
_PLAIN = {
    "subject": "{{_mf_subject}}",
    "html": "{{{_mf_html}}}",
    "text": "{{{_mf_text}}}",
    "sender": "{{{_mf_sender}}}",
}
_COMPOSERS = 256  # distinct templates kept compiled

ResultCallback = Callable[[DeliveryResult], object]


class JobHandle:
    """A batch job running in an :class:`Engine`.

    ``counts`` is the live tally; ``async for result in handle`` yields each
    result as it is final (from the start of the job, until it ends);
    ``await handle.wait()`` returns the summary; ``await handle.cancel()``
    stops the job (sessions dropped, nothing more sent) and returns the
    partial summary.
    """

    def __init__(self, name: str, stop: asyncio.Event | None, keep_results: bool) -> None:
        self.counts = JobSummary(job=name)
        #: Skipped rows and warnings (with ``on_problem`` unset).
        self.problems: list[Problem] = []
        self._stop = stop or asyncio.Event()
        self._keep = keep_results
        self._results: asyncio.Queue[DeliveryResult | None] = asyncio.Queue()
        self._task: asyncio.Task[JobSummary] | None = None

    @property
    def name(self) -> str:
        return self.counts.job

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def _result(self, r: DeliveryResult) -> None:
        if self._keep:
            self._results.put_nowait(r)

    def _start(self, task: asyncio.Task[JobSummary]) -> None:
        self._task = task
        task.add_done_callback(lambda _: self._results.put_nowait(None))

    async def __aiter__(self) -> AsyncIterator[DeliveryResult]:
        while (r := await self._results.get()) is not None:
            yield r
        self._results.put_nowait(None)  # a second iteration ends too

    async def wait(self) -> JobSummary:
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def cancel(self) -> JobSummary:
        """Stop the job; returns once nothing of it runs any more."""
        self._stop.set()
        return await self.wait()


class _BatchSource:
    """A :class:`Batch` as the jobs stage's message source."""

    def __init__(self, engine: Engine, batch: Batch, job: Job, composer: Composer) -> None:
        self.engine = engine
        self.batch = batch
        self.job = job
        self.composer = composer
        self.where = f"batch {job.name}"
        self.suppressed = engine._suppressed

    def suppress_bounce(self, r: DeliveryResult) -> None:
        self.engine._suppress_bounce(r, self.job.name)

    async def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> AsyncIterator[RenderedMessage]:
        rows = self.batch.recipients
        base = self.batch.template.data
        index, count = shard
        n = 0

        def take(row: Row) -> RenderedMessage | None:
            nonlocal n
            n += 1
            if count > 1 and n % count != index:
                return None
            return self._one(row, n, base, on_problem)

        if isinstance(rows, AsyncIterable):
            async for row in rows:
                if (msg := take(row)) is not None:
                    yield msg
        else:
            for row in rows:
                if (msg := take(row)) is not None:
                    yield msg
                if n % 64 == 0:
                    await asyncio.sleep(0)  # a long plain iterable must not starve the loop

    def _one(
        self, row: Row, n: int, base: dict[str, Any], on_problem: ProblemSink
    ) -> RenderedMessage | None:
        where = f"{self.where}: row {n}"
        try:
            r = _recipient(row, n, base, self.batch.template)
        except MailsfluxError as exc:
            on_problem(Problem(where, f"{exc.message}; row skipped"))
            return None
        if self.suppressed is not None and r.email in self.suppressed:
            on_problem(Problem(where, f"{r.email}: suppressed; row skipped", "warning"))
            return None
        try:
            return self.composer.compose(r)
        except MailsfluxError as exc:
            what = f"{exc.field}: {exc.message}" if exc.field else exc.message
            on_problem(Problem(where, f"{r.email}: {what}; row skipped"))
            return None


def _recipient(row: Row, n: int, base: dict[str, Any], template: Message) -> Recipient:
    if isinstance(row, Recipient):
        name, email, data = "", row.email, dict(row.vars)
    elif isinstance(row, str):
        (name, email), data = split_mailbox(row), {}
    else:
        data = dict(row)
        email = str(data.get("email", ""))
        name = str(data.get("name", ""))
        if not email:
            raise ConfigError("no 'email' in the row", field="email")
    email = str(parse_address(email))
    merged = {**base, **data} if base else data
    if not template.template:
        merged.update(_plain(template))
    merged[_NAME] = name
    return Recipient(email=email, vars=merged, row=n)


def _plain(m: Message) -> dict[str, Any]:
    return {
        "_mf_subject": m.subject,
        "_mf_html": m.html,
        "_mf_text": m.text,
        "_mf_sender": m.sender,
    }


def _template_key(m: Message) -> Hashable:
    """What makes two messages share a compiled Composer (not their recipient or data)."""
    bodies: tuple[object, ...] = (
        (m.subject, m.html, m.text) if m.template else (m.html is None, m.text is None)
    )
    return (
        m.sender,
        m.template,
        bodies,
        m.reply_to,
        tuple(m.headers.items()),
        tuple(m.attachments),
        tuple(m.inline_images.items()),
        m.list_unsubscribe,
        m.missing_variables,
    )


class Engine:
    """Send messages and run batch jobs from code: ``async with Engine(config) as e``.

    ``config`` is a :class:`~mailsflux.Config`, a TOML file's path, or None
    (then the keyword arguments say everything). ``relay``, ``dkim``,
    ``tracking`` and ``throttle`` override the config's. ``on_result`` is
    called with every final result of every send and job; an exception it
    raises is reported once on stderr and changes no outcome. An engine may
    be entered again after it was left; it must be entered to send. With
    ``check_relay`` (the default) the first send fails when the relay cannot
    be reached at all; without it, messages defer and wait in the spool.
    With ``redis`` (a URL: one server, ``redis+cluster://`` or
    ``redis+sentinel://``), ``mailsflux worker`` processes send instead of
    this engine, under ``redis_prefix``, sealed with the spool key file
    ``key_file`` (the workers' one): ``submit()`` of a job file enqueues its
    rows, of a Batch its messages composed and signed here (:mod:`.remote`);
    ``send()`` and ``enqueue()`` append to the engine's outbox (:mod:`.outbox`).
    """

    def __init__(
        self,
        config: Config | str | Path | None = None,
        *,
        relay: str | None = None,
        dkim: DKIMKey | list[DKIMKey] | None = None,
        tracking: Tracking | None = None,
        throttle: str | None = None,
        on_result: ResultCallback | None = None,
        resolver: MXResolver | None = None,
        check_relay: bool = True,
        check_authentication: bool = True,
        redis: str | None = None,
        redis_prefix: str = "mf",
        key_file: str | Path | None = None,
    ) -> None:
        if config is None:
            config = Config()
        elif not isinstance(config, Config):
            config = Config.load(config)
        else:
            config = msgspec.structs.replace(config)
        delivery = msgspec.structs.replace(config.delivery)
        if relay is not None:
            delivery.relay = relay
        if throttle is not None:
            delivery.throttle = throttle
        config.delivery = delivery
        if dkim is not None:
            config.dkim = [dkim] if isinstance(dkim, DKIMKey) else list(dkim)
        if tracking is not None:
            config.tracking = tracking
        self.config = config
        self.on_result = on_result
        self.resolver = resolver
        #: Off for a server that accepts into the spool whatever the relay's
        #: state: a relay it cannot reach then defers messages, not refuses them.
        self.check_relay = check_relay
        #: SPF/DKIM/DMARC of each configured key's domain checked on entering
        #: (``[delivery] authentication``); off where the caller checked them
        #: (``serve`` does, per tenant, before its engines start).
        self.check_authentication = check_authentication
        #: With a Redis URL, ``submit()`` puts a job file's rows into the spool
        #: in Redis for ``mailsflux worker`` processes and follows it (:mod:`.remote`).
        self.redis = redis
        self.redis_prefix = redis_prefix
        self.key_file = key_file
        #: Results ``on_result`` raised on.
        self.callback_failures = 0
        self._entered = False
        # Set while leaving: a send then must not start a scheduler nobody closes.
        self._closing = False
        self._base = self._job(
            MessageSpec(sender="", subject=""), config.dkim[0] if config.dkim else None
        )
        self._scheduler: Scheduler | None = None
        self._starting: asyncio.Future[Scheduler] | None = None
        self._store: EventStore | None = None
        self._tracker: Tracker | None = None
        self._suppressed: Suppression | None = None
        self._signers: dict[int, Signer] = {}
        self._composers: OrderedDict[Hashable, Composer] = OrderedDict()
        #: Messages given to the scheduler, by (Message-ID, spool row): a
        #: send's future (None for enqueue) and its message's tags.
        self._pending: dict[
            tuple[str, int], tuple[asyncio.Future[DeliveryResult] | None, Message]
        ] = {}
        self._listeners: set[asyncio.Queue[DeliveryResult | None]] = set()
        self._jobs: set[JobHandle] = set()
        self._callbacks: set[asyncio.Future[Any]] = set()  # coroutine callbacks running
        #: The sends' spool journal (opened by the first send) and its retry loop.
        self._journal: Journal | None = None
        self._holding: GroupCommit[RenderedMessage, RenderedMessage] | None = None
        self._retrying: asyncio.Task[None] | None = None
        #: SPF/DKIM/DMARC results of this engine's jobs, one lookup per identity.
        self._auth = Checker()
        #: With ``redis``: the outbox one-off messages go to, and its results' reader.
        self._outbox: Outbox | None = None
        self._outbox_opening: asyncio.Future[Outbox] | None = None
        self._outbox_reader: asyncio.Task[None] | None = None
        #: From domains send()/enqueue() have checked (or found exempt).
        self._from_checked: set[str] = set()

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        if self._entered:
            raise ConfigError("this Engine is already entered")
        if self.check_authentication:
            await self._check_keys()
        tracking = tracking_config(self._base)
        view = None
        if tracking is not None:
            self._tracker = tracking.tracker()
            self._store = tracking.open_store()
            # The engine's own sends are one list, named by its config (as
            # its tracking links say), so a list opt-out is honoured too.
            view = self._store.suppressed_view(list_name=self.config.name)
        listed = self.config.suppression
        try:
            if listed is not None or view is not None:
                self._suppressed = Suppression(
                    read_list(self._base.resolve(listed)) if listed is not None else None, view
                )
        except BaseException:
            if self._store is not None:  # no store is left open by a failed start
                self._store.close()
            self._store = self._tracker = None
            raise
        self._entered = True
        if self._spool_waiting():
            # Messages an earlier engine left (deferred, or held when it
            # crashed) are sent again without waiting for a first send().
            self._starting = asyncio.ensure_future(self._start())
        return self

    @property
    def tracking_store(self) -> EventStore | None:
        """The tracking store this engine checks and records in (while entered):
        its suppression list, opens and clicks, objections."""
        return self._store

    def site_stats(self) -> dict[str, tuple[int, int]]:
        """Per site of the sends: messages queued, sessions open (empty before the first)."""
        return self._scheduler.site_stats() if self._scheduler is not None else {}

    def in_flight(self) -> int:
        """Messages handed to the sender whose result has not come yet."""
        return len(self._pending)

    def reclaim(self) -> int:
        """Before entering: messages of this config's sends that a crashed
        engine held are due at once, not when its claim runs out. Call it
        only when no other engine with this config is running (``mailsflux
        serve`` locks its data directory); returns how many."""
        if self._entered or not self._base.spec.spool.enabled:
            return 0
        if not (spool_dir(self._base) / "spool.db").exists():
            return 0
        spool = open_spool(self._base)
        try:
            return spool.release_claims(_engine_info(self.config).id)
        finally:
            spool.close()

    def _spool_waiting(self) -> bool:
        """Whether this engine's spool holds messages of its to try again."""
        if not self._base.spec.spool.enabled:
            return False
        if not (spool_dir(self._base) / "spool.db").exists():
            return False
        spool = open_spool(self._base)
        try:
            return spool.next_due(_engine_info(self.config).id) is not None
        finally:
            spool.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for every send and job in flight (a failure leaving cancels jobs).

        Sends and submits made while leaving raise SchedulerClosedError. A
        leave that is itself cancelled (a shutdown timeout) stops the
        sending at once; sends still waiting then raise SchedulerClosedError.
        """
        self._closing = True
        try:
            for handle in list(self._jobs):
                if exc is not None:
                    handle._stop.set()
                await asyncio.gather(handle.wait(), return_exceptions=True)
            if self._outbox is not None and exc is None:
                # Sends wait for their results; enqueued messages are in Redis already.
                waiting = [f for f, _ in self._pending.values() if f is not None]
                await asyncio.gather(*waiting, return_exceptions=True)
            if self._starting is not None and not self._starting.done():
                self._starting.cancel()
            self._starting = None
            if self._retrying is not None:
                # No await here: a leave cancelled at this point must still
                # reach the scheduler's abort below.
                self._retrying.cancel()
                self._retrying = None
            scheduler, self._scheduler = self._scheduler, None
            if scheduler is not None:
                closed = False
                try:
                    if exc is None:
                        await scheduler.close()
                        closed = True
                finally:
                    try:
                        if not closed:  # an error exit, or the wait for close() cancelled
                            await scheduler.abort()
                    finally:
                        await scheduler.throttles.close()
            while self._callbacks:  # leaving waits for the last results' callbacks
                await asyncio.gather(*self._callbacks, return_exceptions=True)
        finally:
            for q in self._listeners:
                q.put_nowait(None)
            for handle in self._jobs:  # left before they ended (the leave was cancelled)
                handle._stop.set()
            for fut, _ in self._pending.values():
                if fut is not None and not fut.done():
                    fut.set_exception(
                        SchedulerClosedError("the Engine was left before this message's result")
                    )
            self._pending.clear()
            self._holding = None
            await self._close_outbox()
            if self._journal is not None:
                journal, self._journal = self._journal, None
                journal.flush()
                journal.spool.end_job(journal.id, "finished")
                journal.spool.close()
            if self._store is not None:
                self._store.close()
            self._store = self._tracker = self._suppressed = None
            self._composers.clear()
            self._entered = self._closing = False

    # -- sending ---------------------------------------------------------------

    async def send(self, message: Message) -> DeliveryResult:
        """Send one message; returns its final result (delivered, bounced,
        deferred, failed or suppressed) with the SMTP code and reply.

        A message that cannot be built (a bad address, a missing variable,
        a header with CR or LF) raises the error; nothing is sent.
        """
        rendered = self._render(message)
        if isinstance(rendered, DeliveryResult):
            return rendered
        await self._check_from(rendered)
        fut: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        await self._hand_on(rendered, message, fut)
        return await fut

    async def enqueue(
        self, message: Message, *, senders: Callable[[str], bool] | None = None
    ) -> str:
        """Accept one message and return its Message-ID (without brackets)
        once it is stored in the spool; it is sent from there, and its final
        result reaches ``on_result`` and :meth:`results` like a send's.

        Durable on return when the config's spool is enabled (the default):
        a crash after that loses nothing, the next engine with this config
        sends it (also when this engine begins closing after the commit).
        Build errors raise as for :meth:`send`; a suppressed recipient's
        result is emitted at once. ``senders`` (a front door's tenant check)
        is asked about the rendered From address and envelope sender: a
        template cannot get past it by rendering to another domain.
        """
        rendered = self._render(message)
        if isinstance(rendered, DeliveryResult):
            return rendered.message_id
        if senders is not None:
            _check_senders(senders, *header_addresses(rendered.data, b"from"), rendered.mail_from)
        await self._check_from(rendered)
        await self._hand_on(rendered, message, None)
        return rendered.message_id

    async def enqueue_raw(
        self,
        mail_from: str,
        rcpt_to: Sequence[str],
        data: bytes,
        *,
        tags: tuple[str, ...] = (),
        metadata: dict[str, str] | None = None,
        senders: Callable[[str], bool] | None = None,
    ) -> str:
        """Accept a finished RFC 5322 message (SMTP submission) for each of
        ``rcpt_to``: Bcc removed, Message-ID and Date added when missing
        (RFC 6409 section 8), DKIM-signed with the key of its From domain,
        and stored in the spool as one copy per recipient, all in one
        commit, before this returns (a bad recipient stores none). Returns
        the Message-ID. ``senders`` as for :meth:`enqueue`.
        """
        self._check_entered()
        message = Message(
            sender=mail_from, to="", subject="", tags=tags, metadata=dict(metadata or {})
        )
        emails = [str(parse_address(rcpt)) for rcpt in rcpt_to]
        index = self._dkim_for(mail_from)
        prepared = prepare_submitted(data, self._id_domain(index))
        if senders is not None:
            _check_senders(senders, *prepared.senders, mail_from)
        if prepared.sender and prepared.sender != mail_from:
            index = self._dkim_for(prepared.sender)  # signed for the From domain
        key = self.config.dkim[index]
        signed = self._signer(index, self._job(MessageSpec(sender="", subject=""), key)).sign(
            prepared.data
        )
        copies = []
        for email in emails:
            if self._suppressed is not None and email in self._suppressed:
                self._emit(_suppressed(email, prepared.message_id, message))
                continue
            copies.append(
                RenderedMessage(
                    mail_from=mail_from,
                    rcpt_to=email,
                    data=signed,
                    message_id=prepared.message_id,
                    smtputf8=not (email.isascii() and mail_from.isascii()),
                )
            )
        # Handed on together: one group commit holds every copy, or none.
        await asyncio.gather(*(self._hand_on(c, message, None) for c in copies))
        return prepared.message_id

    def _render(self, message: Message) -> RenderedMessage | DeliveryResult:
        """``message`` composed and signed, or its suppressed result (emitted)."""
        self._check_entered()
        name, address = split_mailbox(message.to)
        email = str(parse_address(address))
        if self._suppressed is not None and email in self._suppressed:
            result = _suppressed(email, new_message_id(self._id_domain(0)), message)
            self._emit(result)
            return result
        composer = self._composer(message)
        data = {**message.data, **_plain(message)} if not message.template else dict(message.data)
        data[_NAME] = name
        return composer.compose(Recipient(email=email, vars=data))

    async def _hand_on(
        self,
        rendered: RenderedMessage,
        message: Message,
        fut: asyncio.Future[DeliveryResult] | None,
    ) -> None:
        """Store ``rendered`` in the spool, then give it to the scheduler.
        Without a future (enqueue) a message once stored stays stored
        whatever happens next: it was acknowledged, the next engine sends it."""
        if self.redis is not None:
            await self._to_outbox(rendered, message, fut)
            return
        scheduler = await self._transactional()
        self._check_entered()  # the engine may have begun closing meanwhile
        journal = self._journal
        if journal is not None:
            # Stored whole before it is handed on: a crash loses nothing.
            # Sends arriving together share one commit.
            if self._holding is None:
                self._holding = GroupCommit(journal.hold_many)
            rendered = await self._holding(rendered)
        key = (rendered.message_id, rendered.row)
        self._pending[key] = (fut, message)
        try:
            self._check_entered()  # the engine may have begun closing during the commit
            await scheduler.submit(rendered)
        except BaseException as exc:
            self._pending.pop(key, None)
            if journal is not None and fut is None and isinstance(exc, SchedulerClosedError):
                return  # stored: acknowledged, and the next engine sends it
            if journal is not None and fut is not None:
                # The caller hears it failed: it must not go out later too.
                with contextlib.suppress(Exception):
                    journal.release(rendered, f"not sent: {type(exc).__name__}")
            raise

    async def _check_keys(self) -> None:
        """Each DKIM key's domain (as the From domain of what it signs) by
        ``[delivery] authentication``: under "enforce" the engine does not
        start; warnings go to stderr. A key with ``generate = true`` is made
        now, so it is checked (and refused with its TXT record to publish)
        before anything is signed with it."""
        for key in self.config.dkim:
            await self._enforce_key(key, key.domain, f"engine {self.config.name!r}")

    async def _enforce_key(
        self, key: DKIMKey, from_domain: str, what: str, outcome: str = "not started"
    ) -> None:
        """Mail From ``from_domain`` signed with ``key``, by the setting."""
        d = self.config.delivery
        try:
            relay = Relay.parse(d.relay) if d.relay else None
        except ValueError as exc:
            raise ConfigError(str(exc), field="delivery.relay") from None
        await self._auth.key(
            d,
            msgspec.structs.replace(key, key=str(self.config.base_dir / key.key)),
            relay,
            from_domain,
            what,
            lambda m: print(f"mailsflux: warning: {m}", file=sys.stderr, flush=True),
            outcome,
        )

    async def _check_from(self, rendered: RenderedMessage) -> None:
        """A From domain :meth:`send` or :meth:`enqueue` has not sent from yet
        is checked once (then remembered: no DNS per message), with the key
        that signs it; under "enforce" a failing one raises."""
        if not self.check_authentication or not self.config.dkim:
            return
        for address in header_addresses(rendered.data, b"from"):
            domain = address.rpartition("@")[2].lower()
            if domain in self._from_checked:
                continue
            key = self.config.dkim[self._dkim_for(address)]
            await self._enforce_key(key, domain, f"mail From {domain}", "not sent")
            self._from_checked.add(domain)

    async def _to_outbox(
        self,
        rendered: RenderedMessage,
        message: Message,
        fut: asyncio.Future[DeliveryResult] | None,
    ) -> None:
        """With ``redis``: ``rendered`` appended to this engine's outbox job for
        the workers (:mod:`.outbox`); acknowledged once Redis has it."""
        if self._outbox is None:
            from mailsflux.engine.outbox import Outbox

            if self._outbox_opening is None:
                self._outbox_opening = asyncio.ensure_future(asyncio.to_thread(Outbox, self))
            try:
                outbox = await asyncio.shield(self._outbox_opening)
            except BaseException:
                self._outbox_opening = None
                raise
            if self._outbox is None:
                self._outbox = outbox
                self._outbox_reader = asyncio.ensure_future(outbox.follow())
                self._holding = GroupCommit(outbox.hold_many)
        self._check_entered()
        assert self._holding is not None
        rendered = await self._holding(rendered)
        self._pending[(rendered.message_id, rendered.row)] = (fut, message)

    async def _close_outbox(self) -> None:
        reader, self._outbox_reader = self._outbox_reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        outbox, self._outbox = self._outbox, None
        self._outbox_opening = None
        if outbox is not None:
            outbox.close()

    async def submit(
        self,
        job: str | Path | Batch | Prepared,
        *,
        relay: Relay | str | None = None,
        on_problem: ProblemSink | None = None,
        progress: Progress | None = None,
        events: IO[bytes] | None = None,
        shard: tuple[int, int] = (0, 1),
        stop: asyncio.Event | None = None,
        keep_results: bool = True,
        journal: Journal | None = None,
        hard_stop: asyncio.Event | None = None,
        attempts: int | None = None,
        check_authentication: bool = True,
    ) -> JobHandle:
        """Start a batch job: a job file (its own settings), or a :class:`Batch`
        (this engine's settings). Returns at once with the job's handle.

        ``relay`` overrides the job's; ``stop`` set ends the job like
        ``cancel()``; ``keep_results=False`` keeps no results for
        ``async for`` (a big job nobody iterates). With a ``journal`` the
        job's results go to the spool (:func:`mailsflux.jobs.run.send`).

        Before it starts, the job's SPF, DKIM and DMARC records are checked
        per ``[delivery] authentication`` (:mod:`mailsflux.authcheck`): under
        "enforce" a failure raises :class:`~mailsflux.errors.AuthenticationError`
        naming the records to publish. ``check_authentication=False`` skips
        it (a worker process whose parent checked the job).
        """
        self._check_entered()
        if self.redis is not None:
            return await self._submit_to_redis(
                job, relay, stop, keep_results, on_problem, check_authentication
            )
        owned = None
        source: Source
        if isinstance(job, Batch):
            source = self._batch_source(job)
        elif isinstance(job, Prepared):
            source = job
        else:
            source = owned = await asyncio.to_thread(Prepared.load, job)
        relay_ = Relay.parse(relay) if isinstance(relay, str) else relay
        handle = JobHandle(source.job.name, stop, keep_results)
        problems = on_problem or handle.problems.append
        if check_authentication:
            try:
                await self._auth.job(
                    source.job,
                    relay_,
                    lambda m: problems(Problem(source.job.name, m, "warning")),
                    _plain_sender(job),
                )
            except BaseException:
                if owned is not None:
                    owned.close()
                raise

        # The labels a Batch's results carry: decided once, not per message.
        labels = (
            (job.template.tags, job.template.metadata)
            if isinstance(job, Batch) and (job.template.tags or job.template.metadata)
            else None
        )

        def on_result(r: DeliveryResult) -> None:
            if labels is not None:
                r = msgspec.structs.replace(r, tags=labels[0], metadata=labels[1])
            handle._result(r)
            self._emit(r)

        def on_results(rs: Sequence[DeliveryResult]) -> None:
            # A delivered batch. Asked each time: a listener may come or go
            # while the job runs. A big job nobody follows (the CLI's
            # ``send``) does nothing a message here.
            if not self._takes_results(handle):
                return
            for r in rs:
                on_result(r)

        async def run() -> JobSummary:
            try:
                return await send(
                    source,
                    relay_,
                    on_problem=problems,
                    on_result=on_result,
                    on_results=on_results,
                    progress=progress,
                    events=events,
                    resolver=self.resolver,
                    shard=shard,
                    stop=handle._stop,
                    hard_stop=hard_stop,
                    summary=handle.counts,
                    journal=journal,
                    attempts=attempts,
                )
            finally:
                self._jobs.discard(handle)
                if owned is not None:
                    owned.close()

        self._jobs.add(handle)
        handle._start(asyncio.ensure_future(run()))
        return handle

    async def submit_letters(
        self,
        job: str | Path | LetterJob,
        *,
        on_event: Callable[[Event], None] | None = None,
        on_problem: ProblemSink | None = None,
        carrier: Carrier | None = None,
        workers: int = 0,
    ) -> LetterSummary:
        """Run a letter job (:mod:`mailsflux.letters`): each row's PDF rendered
        and handed to the job's carrier (or ``carrier``), on ``workers``
        processes (0: one per core). ``on_event`` gets each letter's
        ``letter_submitted`` or ``failed`` event, in this loop; ``on_problem``
        each skipped row (default: kept nowhere, counted in the summary).

        Needs the ``letters`` extra (:class:`~mailsflux.errors.MissingExtraError`
        without it). Rendering is CPU work: it runs off the event loop.
        """
        from mailsflux.letters import load_letter_job, send_letters

        loop = asyncio.get_running_loop()
        letters = (
            await asyncio.to_thread(load_letter_job, job) if isinstance(job, str | Path) else job
        )

        def event(e: Event) -> None:
            # Back in the loop: callers' callbacks never run on a worker thread.
            if on_event is not None:
                loop.call_soon_threadsafe(on_event, e)

        return await asyncio.to_thread(
            send_letters,
            letters,
            on_problem=on_problem or (lambda p: None),
            on_event=event,
            carrier=carrier,
            workers=workers,
        )

    def _batch_source(self, batch: Batch) -> _BatchSource:
        spec = self._message_spec(batch.template)
        dkim = self._dkim_for(batch.template.sender)
        j = self._job(spec, self.config.dkim[dkim], name=batch.name or self.config.name)
        return _BatchSource(self, batch, j, self._make_composer(batch.template, j, dkim))

    @property
    def origin(self) -> str:
        """What names this engine in Redis: its prepared jobs' source is
        :data:`~mailsflux.jobs.redis_batches.SOURCE` and this."""
        return f"engine:{self.config.source or self.config.base_dir}"

    async def _submit_to_redis(
        self,
        job: str | Path | Batch | Prepared,
        relay: Relay | str | None,
        stop: asyncio.Event | None,
        keep_results: bool,
        on_problem: ProblemSink | None,
        check_authentication: bool,
    ) -> JobHandle:
        """``submit()`` with ``redis``: a job file is enqueued as rows for the
        workers to compose; a Batch is composed and signed here (:mod:`.remote`)."""
        from mailsflux.engine.remote import submit_batch_to_redis, submit_to_redis

        if isinstance(job, Prepared) or not isinstance(relay, (str, type(None))):
            raise ConfigError(
                "with redis=URL, submit() takes a job file or a Batch, and a relay as a URL"
            )
        if relay is not None and not isinstance(job, Batch):
            # The workers compose a job file's rows and send them by its
            # [delivery] relay or their own --relay: this one would go unused.
            raise ConfigError(
                "with redis=URL, a job file is sent by its [delivery] relay or the workers'"
                " --relay: relay= applies to a Batch",
                field="relay",
            )
        if isinstance(job, Batch):
            source: _BatchSource | None = self._batch_source(job)
            name = job.name or self.config.name
        else:
            source, name = None, Path(job).stem
        handle = JobHandle(name, stop, keep_results)
        if check_authentication:
            # Before any row is in Redis: the workers take the job as it is.
            warn_to = on_problem or handle.problems.append
            if isinstance(job, Batch):
                assert source is not None
                checked = source.job
                relay_ = Relay.parse(relay) if relay else None
            else:
                checked, relay_ = await asyncio.to_thread(_load_signable, job), None
            await self._auth.job(
                checked,
                relay_,
                lambda m: warn_to(Problem(checked.name, m, "warning")),
                _plain_sender(job),
            )
        self._jobs.add(handle)
        try:
            if isinstance(job, Batch):
                assert source is not None
                await submit_batch_to_redis(
                    self,
                    handle,
                    source,
                    relay=relay,
                    tags=job.template.tags,
                    metadata=dict(job.template.metadata),
                    on_problem=on_problem,
                )
            else:
                await submit_to_redis(self, handle, job, on_problem=on_problem)
        except BaseException:
            self._jobs.discard(handle)
            raise
        return handle

    async def events(self) -> AsyncIterator[Event]:
        """Every final result as an event of the one schema
        (:class:`mailsflux.Event`, as the HTTP API, webhooks and ``send
        --events`` carry it), from when iteration starts until the engine is left."""
        async for r in self.results():
            yield result_event(r, job=self.config.name)

    async def results(self) -> AsyncIterator[DeliveryResult]:
        """Every final result of every send and job, from when iteration
        starts until the engine is left."""
        q: asyncio.Queue[DeliveryResult | None] = asyncio.Queue()
        self._listeners.add(q)
        try:
            while (r := await q.get()) is not None:
                yield r
        finally:
            self._listeners.discard(q)

    # -- internals -------------------------------------------------------------

    def _check_entered(self) -> None:
        if self._closing:
            raise SchedulerClosedError("the Engine is closing: it takes no more messages or jobs")
        if not self._entered:
            raise ConfigError("use the Engine as `async with Engine(...) as engine:` first")

    def _job(self, spec: MessageSpec, dkim: DKIMKey | None, name: str = "") -> Job:
        """A job spec for the stages that take one: this config's delivery,
        tracking and the message's own headers. A message's errors name
        ``<message>`` (it has no file); its relative paths are the config's."""
        job = Job(
            JobSpec(
                name=name or self.config.name,
                message=spec,
                recipients=RecipientsSpec(file="", name_column=_NAME),
                dkim=dkim or DKIMKey(domain="invalid", selector="none", key=""),
                delivery=self.config.delivery,
                tracking=self.config.tracking,
                spool=self.config.spool,
            ),
            Path("<message>") if spec.sender else self.config.path,
        )
        job.base = self.config.base_dir
        return job

    async def _transactional(self) -> Scheduler:
        """The sends' scheduler, started by the first send (concurrent first
        sends share one start; a failed start is tried again by the next)."""
        if self._scheduler is not None:
            return self._scheduler
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        starting = self._starting
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The start was cancelled by leaving, not this send's caller.
            if starting.cancelled() and self._closing:
                self._check_entered()
            raise
        finally:
            if starting.done() and (starting.cancelled() or starting.exception() is not None):
                self._starting = None

    async def _start(self) -> Scheduler:
        """Like a job, check the relay once first: one that cannot be reached
        (refused, silent, TLS or credentials failing) is a wrong setting, which
        the first send raises instead of every message deferring after retries."""
        job = self._base
        d = job.spec.delivery
        ehlo = d.ehlo_name or socket.getfqdn() or "localhost"
        relay, tls_context = job.relay(), job.tls_context()
        if relay is not None and self.check_relay:
            note = await probe(relay, d.timeout, local_hostname=ehlo, tls_context=tls_context)
            if note is not None:
                print(log_text(f"mailsflux: {note}"), file=sys.stderr)
        scheduler = scheduler_for(
            job,
            relay,
            self._delivered,
            resolver=self.resolver,
            ehlo_name=ehlo,
            tls_context=tls_context,
        )
        scheduler.suppressed = self._suppressed
        if job.spec.spool.enabled:
            journal = self._journal = _engine_journal(job, self.config)
            scheduler.park = journal.park
            scheduler.after_batch = journal.flush
            self._retrying = asyncio.ensure_future(self._retry_due(journal, scheduler))
        self._scheduler = scheduler
        return scheduler

    async def _retry_due(self, journal: Journal, scheduler: Scheduler) -> None:
        """While the engine runs, deferred messages (and any a crashed run left
        pending) are handed to the scheduler again as they come due, and the
        claim on what this engine holds is renewed so no other takes it."""
        spool = journal.spool
        tick = max(min(spool.claim / 3, 30.0), 0.05)
        failing = False
        while True:
            try:
                await self._retry_pass(journal, scheduler, tick)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a locked or full spool: try again later
                if not failing:
                    print(f"mailsflux: retrying from the spool failed: {exc}", file=sys.stderr)
                failing = True
                await asyncio.sleep(tick)

    async def _retry_pass(self, journal: Journal, scheduler: Scheduler, tick: float) -> None:
        spool = journal.spool
        journal.renew()
        now = time.time()
        nxt = spool.next_due(journal.id)
        if nxt is None or nxt > now:
            await asyncio.sleep(min(max((nxt or now + tick) - now, 0.05), tick))
            return
        for item in spool.due(now, job=journal.id, limit=500):
            if item.record.row in journal.held:
                continue
            msg = journal.take_unless(item, self._suppressed)
            if msg is not None:
                await scheduler.submit(msg)

    def _delivered_row(self, r: DeliveryResult) -> None:
        """An outbox result (Redis): a record that could not be opened comes
        back without its Message-ID, so its send is found by row (rows are
        unique in the outbox job)."""
        if not r.message_id:
            for key in self._pending:
                if key[1] == r.row:
                    r = msgspec.structs.replace(r, message_id=key[0])
                    break
        self._delivered(r)

    def _delivered(self, r: DeliveryResult) -> None:
        """The transactional scheduler's callback: it must never raise into it."""
        if self._journal is not None:
            r = self._journal.settle(r)
        pending = self._pending.pop((r.message_id, r.row), None)
        if pending is not None:
            fut, message = pending
            if message.tags or message.metadata:
                r = msgspec.structs.replace(r, tags=message.tags, metadata=message.metadata)
            if fut is not None and not fut.done():
                fut.set_result(r)
        try:
            self._suppress_bounce(r, self.config.name)
        except Exception as exc:  # a failing store must not fail delivery
            print(log_text(f"mailsflux: cannot record a bounce: {exc}"), file=sys.stderr)
        self._emit(r)

    def _takes_results(self, handle: JobHandle) -> bool:
        """Whether anyone hears a result of ``handle``'s job: the handle
        (keeping them), a listener of results(), or ``on_result``; what
        :meth:`_emit` and ``JobHandle._result`` would give them to."""
        return handle._keep or bool(self._listeners) or self.on_result is not None

    def _emit(self, r: DeliveryResult) -> None:
        for q in self._listeners:
            q.put_nowait(r)
        if self.on_result is None:
            return
        try:
            out = self.on_result(r)
            if inspect.isawaitable(out):
                task = asyncio.ensure_future(out)
                self._callbacks.add(task)
                task.add_done_callback(self._callback_done)
        except Exception as exc:
            self._callback_failed(exc)

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._callback_failed(cast(Exception, task.exception()))

    def _callback_failed(self, exc: BaseException) -> None:
        self.callback_failures += 1
        if self.callback_failures == 1:
            print(
                log_text(
                    f"mailsflux: the result callback failed ({type(exc).__name__}: {exc});"
                    " outcomes stand, and are not repeated"
                ),
                file=sys.stderr,
            )

    def _suppress_bounce(self, r: DeliveryResult, job: str) -> None:
        from mailsflux.delivery.bounce import classify_result

        if self._store is not None and r.status == "bounced" and classify_result(r).suppress:
            self._store.suppress(
                r.recipient, reason="hard-bounce", job=job, message_id=r.message_id
            )
            if self._suppressed is not None:
                self._suppressed.add(r.recipient)

    def _dkim_for(self, sender: str) -> int:
        """The index of the key for ``sender``'s domain (or a parent), else 0."""
        keys = self.config.dkim
        if not keys:
            raise ConfigError("no DKIM key: every message is signed; set Config.dkim", field="dkim")
        try:
            domain = ascii_domain(split_mailbox(sender)[1].rpartition("@")[2], "from")
        except (HeaderError, DKIMError, ValueError):
            return 0
        for i, k in enumerate(keys):
            try:
                d = ascii_domain(k.domain, "domain")
            except DKIMError:
                continue
            if domain == d or domain.endswith("." + d):
                return i
        return 0

    def _id_domain(self, index: int) -> str:
        """The right side of Message-IDs this engine makes: its key's domain."""
        keys = self.config.dkim
        try:
            return ascii_domain(keys[index].domain, "domain") if keys else "localhost"
        except DKIMError:
            return "localhost"

    def _signer(self, index: int, job: Job) -> Signer:
        signer = self._signers.get(index)
        if signer is None:
            signer = self._signers[index] = make_signer(job)
        return signer

    def _message_spec(self, m: Message) -> MessageSpec:
        return MessageSpec(
            # A sender without braces stays static (checked once, not per message).
            sender=m.sender if m.template or "{{" not in m.sender else _PLAIN["sender"],
            subject=m.subject if m.template else _PLAIN["subject"],
            reply_to=m.reply_to,
            headers=m.headers,
            missing_variables=m.missing_variables,
            list_unsubscribe=m.list_unsubscribe,
        )

    def _composer(self, m: Message) -> Composer:
        key = _template_key(m)
        composer = self._composers.get(key)
        if composer is not None:
            self._composers.move_to_end(key)
            return composer
        index = self._dkim_for(m.sender)
        job = self._job(self._message_spec(m), self.config.dkim[index])
        composer = self._composers[key] = self._make_composer(m, job, index)
        if len(self._composers) > _COMPOSERS:
            self._composers.popitem(last=False)
        return composer

    def _make_composer(self, m: Message, job: Job, dkim: int) -> Composer:
        if m.html is None and m.text is None:
            raise ConfigError("message needs html, text or both", field="message")
        html, text = (
            (m.html, m.text)
            if m.template
            else (
                _PLAIN["html"] if m.html is not None else None,
                _PLAIN["text"] if m.text is not None else None,
            )
        )
        sources = Sources(
            html=html,
            text=text,
            attachments=[self._attachment(a, job) for a in m.attachments],
            inline=[self._attachment(a, job, cid) for cid, a in m.inline_images.items()],
        )
        return Composer(job, self._signer(dkim, job), tracker=self._tracker, sources=sources)

    def _attachment(self, a: Attachment, job: Job, cid: str | None = None) -> MimeAttachment:
        data = a.content
        if not isinstance(data, bytes):
            path = job.resolve(str(data))
            try:
                data = path.read_bytes()
            except OSError as exc:
                why = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror
                raise ConfigError(f"attachment {str(path)!r}: {why}", field="attachments") from None
        name = a.name
        ctype = a.content_type or content_type(Path(name or "file.bin"))
        return MimeAttachment(data, name, ctype, cid=cid)


__all__ = ["Engine", "JobHandle", "ResultCallback"]


def _plain_sender(job: object) -> str | None:
    """A plain Batch's From (data to a stand-in template): what the
    authentication check must read instead of the template's sender."""
    if isinstance(job, Batch) and not job.template.template:
        return job.template.sender
    return None


def _load_signable(path: str | Path) -> Job:
    """The job file, its DKIM key generated if it asks for that (the check reads it)."""
    from mailsflux.jobs.jobfile import load_job

    job = load_job(path)
    make_signer(job)
    return job


def _check_senders(allowed: Callable[[str], bool], *addresses: str) -> None:
    for a in addresses:
        if a and not allowed(a):
            raise AccessError(
                f"sender {a!r} is not in this tenant's domains",
                field="sender",
                code=403,
                enhanced_status="5.7.1",
            )


def _suppressed(email: str, message_id: str, message: Message) -> DeliveryResult:
    return DeliveryResult(
        recipient=email,
        message_id=message_id,
        status="suppressed",
        reply="suppressed: unsubscribed, bounced or listed; not sent",
        attempts=0,
        tags=message.tags,
        metadata=message.metadata,
    )


def _engine_info(config: Config) -> JobInfo:
    """An engine's one-off sends are one spool job per engine name and config."""
    where = f"{config.name}\x00{config.source or config.base_dir}"
    return JobInfo(
        id="engine-" + hashlib.sha256(where.encode()).hexdigest()[:16],
        name=config.name,
        source=f"engine:{config.source or config.base_dir}",
        fingerprint="engine",
    )


def _engine_journal(job: Job, config: Config) -> Journal:
    """The spool journal of an engine's one-off sends, rows numbered across restarts."""
    info = _engine_info(config)
    spool = open_spool(job)
    try:
        # Joining: engines of one config share its spool job (claims keep
        # them apart), so a live one does not lock out the next.
        return Journal(spool, spool.begin_job(info, joining=True), job)
    except BaseException:
        spool.close()
        raise
