"""Running a job: send, render to files, validate.

The send loop keeps rendering and delivery in one uvloop: the producer
composes messages into a bounded queue and yields whenever the queue is
full, so SMTP workers always have work and memory stays flat however many
rows the recipient file holds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from typing import IO

import msgspec

from mailsflux._bounce import classify_result
from mailsflux._compose import Composer
from mailsflux._delivery import probe
from mailsflux._errors import DKIMKeyError, MailsfluxError, OutputError, TemplateError
from mailsflux._eventstore import EventStore, SuppressionView
from mailsflux._job import Job, Relay, is_fqdn, load_job
from mailsflux._keyfiles import ensure_key
from mailsflux._mx import MXResolver, parse_host_port
from mailsflux._outdir import eml_name, make_out_dir, write_new
from mailsflux._problems import CappedProblems
from mailsflux._progress import Progress
from mailsflux._recipients import RecipientFile
from mailsflux._scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux._smtp import TLSMode
from mailsflux._stoppable import run_until
from mailsflux._suppression import Suppression, read_list
from mailsflux._throttle import LocalThrottles, Throttles
from mailsflux._trackconfig import TrackingConfig, load_config, write_new_config
from mailsflux._tracker import Tracker
from mailsflux._types import DeliveryResult, Event, JobSummary, Message, Problem, Recipient
from mailsflux.dkim import Signer

ProblemSink = Callable[[Problem], None]


def make_signer(job: Job) -> Signer:
    d = job.spec.dkim
    if d.generate:
        ensure_key(
            job.key_path, domain=d.domain, selector=d.selector, algorithm=d.algorithm, bits=d.bits
        )
    elif not job.key_path.exists():
        raise DKIMKeyError(
            "DKIM key file not found (set generate = true in [dkim] to create it)",
            file=str(job.key_path),
        )
    return job_signer(job)


def job_signer(job: Job) -> Signer:
    """The signer for the job's [dkim] table (the key file must exist)."""
    d = job.spec.dkim
    return Signer(domain=d.domain, selector=d.selector, key=job.key_path, algorithm=d.algorithm)


def tracking_config(job: Job) -> TrackingConfig | None:
    """The job's tracking config, created first when the job says to generate it."""
    t, path = job.spec.tracking, job.tracking_path
    if t is None or path is None:
        return None
    if t.generate and not path.exists():
        assert t.base_url is not None  # load_job checks this
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new_config(path, t.base_url)
    return load_config(path)


class Prepared:
    """A job with its templates compiled, key loaded and recipients opened.

    With ``[tracking]`` it also holds the event store, whose suppression list
    is checked for every recipient before anything is rendered for them.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self.signer = make_signer(job)
        self.tracking = tracking_config(job)
        self.store: EventStore | None = None
        tracker = None
        view: SuppressionView | None = None
        if self.tracking is not None:
            tracker = self.tracking.tracker()
            self.store = self.tracking.open_store()
            view = self.store.suppressed_view()
        listed = job.spec.recipients.suppression
        self.suppressed: Suppression | None = None
        if view is not None or listed is not None:
            self.suppressed = Suppression(
                read_list(job.resolve(listed)) if listed is not None else None, view
            )
        self.composer = Composer(job, self.signer, tracker=tracker)
        self.recipients = RecipientFile(
            job.recipients_path, email_column=job.spec.recipients.email_column
        )
        # Before any row is read: a strict template variable that is no
        # column would skip every row, so the job cannot run at all.
        for cp in self.composer.missing_columns(self.recipients.columns):
            if cp.strict:
                self.close()
                raise TemplateError(f"{cp.where}: {cp.message(self.recipients.path)}")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def suppress_bounce(self, r: DeliveryResult) -> None:
        """A hard bounce (bad mailbox or domain) is never mailed again.

        The classifier decides, not the status code's subject: ``5.1.7`` and
        ``5.1.8`` are our own sender's address (RFC 3463), and a refusal of
        our setup, a policy block or a local problem says nothing about the
        recipient.
        """
        if self.store is not None and r.status == "bounced":
            if classify_result(r).suppress:
                self.store.suppress(
                    r.recipient, reason="bounce", job=self.job.name, message_id=r.message_id
                )
                if self.suppressed is not None:
                    self.suppressed.add(r.recipient)

    @classmethod
    def load(cls, path: str | Path) -> Prepared:
        return cls(load_job(path))

    def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> Iterator[Message]:
        return compose_all(self.composer, self.recipients, on_problem, self.suppressed, shard)

    def count_rows(self) -> int:
        """Data rows in the recipient file (for the progress bar)."""
        return self.recipients.count_rows()


def _row_of(item: Recipient | Problem) -> int:
    if isinstance(item, Recipient):
        return item.row
    tail = item.where.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _row_problem(path: Path, r: Recipient, exc: MailsfluxError) -> Problem:
    what = exc.message
    if exc.field and exc.field not in what:
        what = f"{exc.field}: {what}"
    return Problem(f"{path}:{r.row}", f"{r.email}: {what}; row skipped")


class EventLog:
    """Appends events as JSON lines; never holds message content."""

    def __init__(self, fh: IO[bytes] | None, job: str) -> None:
        self.fh = fh
        self.job = job
        self.enc = msgspec.json.Encoder()

    def result(self, r: DeliveryResult) -> None:
        if self.fh is None:
            return
        ev = Event(
            kind=r.status,
            at=time.time(),
            message_id=r.message_id,
            recipient=r.recipient,
            job=self.job,
            code=r.code,
            enhanced_status=r.enhanced_status,
            detail=r.reply,
        )
        self.fh.write(self.enc.encode(ev) + b"\n")


def _scheduler(
    job: Job,
    relay: Relay | None,
    on_result: Callable[[DeliveryResult], None],
    *,
    resolver: MXResolver | None = None,
    throttles: Throttles | None = None,
    share: int = 1,
    ehlo_name: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Scheduler:
    """The job's scheduler; ``share`` divides in-process limits among workers."""
    d = job.spec.delivery
    credentials = None
    tls: TLSMode = d.tls
    if relay is not None:
        tls = relay.session_tls
        if relay.username is not None:
            credentials = (relay.username, relay.password or "")
        resolver = resolver or MXResolver(smarthost=(relay.host, relay.port))
    elif resolver is None:
        servers = [
            parse_host_port(n, 53, what="delivery.nameservers", bare_ipv6=True)
            for n in d.nameservers
        ] or None
        resolver = MXResolver(nameservers=servers, port=d.mx_port)
    if throttles is None:
        if d.throttle == "local":
            throttles = LocalThrottles()
        else:
            # Imported here: jobs without a shared throttle never load the redis client.
            from mailsflux._throttle_redis import RedisThrottles

            throttles = RedisThrottles(d.throttle)
    # With in-process throttles every worker process holds its share of each limit.
    local = isinstance(throttles, LocalThrottles)
    part = share if local else 1

    def limits(rate: float, burst: int, conns: int, mpc: int, tls_mode: str) -> SiteLimits:
        return SiteLimits(
            rate=rate / part if rate else 0.0,
            burst=max(1, burst // part),
            connections=max(1, conns // part),
            messages_per_connection=mpc,
            tls=tls_mode,  # type: ignore[arg-type]
        )

    default = limits(d.rate, d.burst, d.connections, d.messages_per_connection, tls)
    domains = {
        name: limits(
            o.rate if o.rate is not None else d.rate,
            o.burst if o.burst is not None else d.burst,
            o.connections if o.connections is not None else d.connections,
            o.messages_per_connection or d.messages_per_connection,
            # A relay's TLS is its URL's (credentials need verified TLS): no override.
            tls if relay is not None else (o.tls or tls),
        )
        for name, o in d.domains.items()
    }
    return Scheduler(
        resolver,
        on_result,
        throttles=throttles,
        default_limits=default,
        domain_limits=domains,
        job=job.name,
        job_rate=d.job_rate / part if d.job_rate else 0.0,
        job_burst=max(1, d.burst // part),
        retry=RetryPolicy(
            initial=d.retry_initial,
            max_delay=d.retry_max,
            max_age=d.max_age,
            attempts=d.attempts,
        ),
        timeout=d.timeout,
        data_timeout=d.data_timeout,
        credentials=credentials,
        local_hostname=ehlo_name,
        tls_context=tls_context,
    )


async def send(
    prepared: Prepared,
    relay: Relay | None = None,
    *,
    on_problem: ProblemSink,
    on_result: Callable[[DeliveryResult], None] | None = None,
    progress: Progress | None = None,
    events: IO[bytes] | None = None,
    check_relay: bool = True,
    resolver: MXResolver | None = None,
    throttles: Throttles | None = None,
    shard: tuple[int, int] = (0, 1),
    stop: asyncio.Event | None = None,
) -> JobSummary:
    """Send every good row of the job; return the tally.

    Setting ``stop`` ends the job within moments: open sessions are dropped
    and the tally so far comes back with ``interrupted`` set.

    ``relay`` overrides the job's relay; with neither, mail goes to MX hosts
    (``resolver`` lets tests use their own DNS server). ``shard=(i, n)``
    sends only this worker's share of the rows.
    """
    spec = prepared.job.spec.delivery
    summary = JobSummary(job=prepared.job.name)
    per_domain: Counter[str] = Counter()
    log = EventLog(events, prepared.job.name)
    if relay is None:
        relay = prepared.job.relay()
    report = CappedProblems(on_problem, where=str(prepared.recipients.path))

    def problem(p: Problem) -> None:
        summary.total += 1
        summary.skipped += 1
        report(p)
        if progress is not None:
            progress.advance()

    def result(r: DeliveryResult) -> None:
        # Counted first: a failing store or callback below must not lose the tally.
        summary.total += 1
        if r.status == "delivered":
            summary.sent += 1
            per_domain[r.domain] += 1
        elif r.status == "deferred":
            summary.deferred += 1
        elif r.status == "skipped":
            summary.skipped += 1
            report(Problem(r.recipient, f"{r.reply}; not retried", "warning"))
        else:
            summary.failed += 1
        if progress is not None:
            progress.advance()
        prepared.suppress_bounce(r)
        log.result(r)
        if on_result is not None:
            on_result(r)

    ehlo = spec.ehlo_name or socket.getfqdn() or "localhost"
    if shard[0] == 0 and not is_fqdn(ehlo):  # one warning, not one per worker
        on_problem(
            Problem(
                str(prepared.job.path),
                f"EHLO name {ehlo!r} is not a fully qualified domain name; receivers that"
                " want one (Postfix: reject_non_fqdn_helo_hostname) refuse every message:"
                " set [delivery] ehlo_name or --ehlo-name",
                "warning",
            )
        )
    if shard[0] == 0 and relay is not None and (unsafe := relay.cleartext_warning):
        on_problem(Problem(str(prepared.job.path), unsafe, "warning"))
    tls_context = prepared.job.tls_context()
    if check_relay and relay is not None:
        note = await probe(relay, spec.timeout, local_hostname=ehlo, tls_context=tls_context)
        if note is not None:
            on_problem(Problem(str(prepared.job.path), note, "warning"))
    scheduler = _scheduler(
        prepared.job,
        relay,
        result,
        resolver=resolver,
        throttles=throttles,
        share=shard[1],
        ehlo_name=ehlo,
        tls_context=tls_context,
    )
    scheduler.suppressed = prepared.suppressed
    start = time.perf_counter()

    async def produce() -> None:
        submit = scheduler.submit
        for msg in prepared.messages(problem, shard=shard):
            await submit(msg)
        await scheduler.close()

    try:
        if not await run_until(produce(), stop):
            summary.interrupted = True
            await scheduler.abort()
    except BaseException:
        await scheduler.abort()  # no session or task outlives a failed job
        raise
    finally:
        await scheduler.throttles.close()
        report.finish()
    summary.elapsed = time.perf_counter() - start
    summary.per_domain = dict(per_domain.most_common())
    if progress is not None:
        progress.finish(complete=not summary.interrupted)
    return summary


class Rendered(msgspec.Struct):
    """What :func:`render_to_dir` did: the files written, and how many could not be."""

    written: list[Path]
    unwritten: int = 0


def render_to_dir(
    prepared: Prepared,
    out: Path,
    *,
    limit: int | None,
    on_problem: ProblemSink,
    force: bool = False,
) -> Rendered:
    """Write the first ``limit`` finished messages as ``.eml`` files.

    An existing file is an :class:`OutputError` unless ``force``; a file that
    cannot be written is reported with its row, and the rest go on.
    """
    make_out_dir(out)
    done = Rendered([])
    for msg in prepared.messages(on_problem):
        if limit is not None and len(done.written) >= limit:
            break
        p = out / eml_name(msg.row, msg.rcpt_to)
        try:
            write_new(p, msg.data, replace=force)
        except FileExistsError:
            raise OutputError("exists (--force replaces it)", file=str(p)) from None
        except OSError as exc:
            done.unwritten += 1
            where = f"{prepared.recipients.path}:{msg.row}"
            on_problem(Problem(where, f"{msg.rcpt_to}: cannot write {p}: {exc.strerror}"))
            continue
        done.written.append(p)
    return done


def validate(path: str | Path) -> list[Problem]:
    """Check everything about a job without sending; return every problem found."""
    try:
        job = load_job(path)
    except MailsfluxError as exc:
        return [Problem(exc.location() or str(path), exc.message)]
    problems: list[Problem] = []

    def add(exc: MailsfluxError) -> None:
        problems.append(Problem(exc.location() or str(job.path), exc.message))

    try:
        relay = job.relay()
        if relay is not None and (unsafe := relay.cleartext_warning):
            problems.append(Problem(str(job.path), unsafe, "warning"))
    except MailsfluxError as exc:
        add(exc)
    d = job.spec.dkim
    if job.key_path.exists():
        try:
            job_signer(job)  # loads and checks the key
        except MailsfluxError as exc:
            add(exc)
    elif d.generate:
        problems.append(
            Problem(
                str(job.key_path), "DKIM key not yet created: `send` will generate it", "warning"
            )
        )
    else:
        problems.append(Problem(str(job.key_path), "DKIM key file not found"))
    tracker: Tracker | None = None
    tspec, tpath = job.spec.tracking, job.tracking_path
    if tspec is not None and tpath is not None:
        try:
            if tpath.exists():
                tracker = load_config(tpath).tracker()
            elif tspec.generate and tspec.base_url:
                problems.append(
                    Problem(str(tpath), "tracking config not yet created: `send` will", "warning")
                )
                # A throwaway key: enough to check the templates as they will render.
                tracker = Tracker(tspec.base_url, {"check": os.urandom(32)}, "check")
            else:
                problems.append(Problem(str(tpath), "tracking config not found"))
        except MailsfluxError as exc:
            add(exc)
    try:
        # No signer: validate checks every row as it would be sent, but signs nothing.
        composer = Composer(job, None, tracker=tracker)
    except MailsfluxError as exc:
        add(exc)
        return problems
    try:
        rf = RecipientFile(job.recipients_path, email_column=job.spec.recipients.email_column)
    except MailsfluxError as exc:
        add(exc)
        return problems
    for cp in composer.missing_columns(rf.columns):
        if cp.strict:
            problems.append(Problem(cp.where, cp.message(rf.path)))
        else:
            problems.append(
                Problem(cp.where, f"{cp.message(rf.path)}; it renders empty", "warning")
            )
    # Render every row and check its headers, to find the rows `send` would skip.
    rows = CappedProblems(problems.append, where=str(rf.path))
    check_all(composer, rf, rows)
    rows.finish()
    return problems


def _rows(
    rf: RecipientFile,
    on_problem: ProblemSink,
    suppressed: Container[str] | None,
    shard: tuple[int, int],
) -> Iterator[Recipient]:
    """Each good, unsuppressed row of this shard; every other row is reported."""
    index, count = shard
    for item in rf:
        if count > 1 and _row_of(item) % count != index:
            continue
        if isinstance(item, Problem):
            on_problem(item)
            continue
        if suppressed is not None and item.email in suppressed:
            on_problem(
                Problem(
                    f"{rf.path}:{item.row}", f"{item.email}: suppressed; row skipped", "warning"
                )
            )
            continue
        yield item


def compose_all(
    composer: Composer,
    rf: RecipientFile,
    on_problem: ProblemSink,
    suppressed: Container[str] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Iterator[Message]:
    """Yield each good row's message; report and skip each bad or suppressed row.

    With ``shard=(i, n)`` only rows whose line number is i modulo n are
    taken, so n worker processes share a file without overlap and each bad
    row is reported once. (The reader drops duplicate addresses per worker.)
    """
    for item in _rows(rf, on_problem, suppressed, shard):
        try:
            yield composer.compose(item)
        except MailsfluxError as exc:
            on_problem(_row_problem(rf.path, item, exc))


def check_all(composer: Composer, rf: RecipientFile, on_problem: ProblemSink) -> int:
    """Report every row that :func:`compose_all` would skip, without composing
    (no MIME bodies, no DKIM): what ``validate`` runs. Returns the good rows."""
    good = 0
    for item in _rows(rf, on_problem, None, (0, 1)):
        try:
            composer.check(item)
        except MailsfluxError as exc:
            on_problem(_row_problem(rf.path, item, exc))
        else:
            good += 1
    return good


__all__ = ["Prepared", "render_to_dir", "send", "validate"]
