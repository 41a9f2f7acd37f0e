"""Running a job: send, render to files, validate.

The send loop keeps rendering and delivery in one uvloop: the producer
composes messages into a bounded queue and yields whenever the queue is
full, so SMTP workers always have work and memory stays flat however many
rows the recipient file holds.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterable, Callable, Container, Iterable, Sequence
from pathlib import Path
from typing import IO, Protocol, TypeVar

import msgspec

from mailsflux.delivery.mx import MXResolver, parse_host_port
from mailsflux.delivery.probe import probe
from mailsflux.delivery.relay import Relay
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.delivery.smtp import TLSMode
from mailsflux.delivery.throttle import LocalThrottles, Throttles
from mailsflux.errors import SpoolError
from mailsflux.jobs._settle import domains as _domains
from mailsflux.jobs.eventlog import EventLog
from mailsflux.jobs.jobfile import Job, is_fqdn
from mailsflux.jobs.journal import Journal, spool_dir
from mailsflux.jobs.prepared import Prepared
from mailsflux.jobs.problems import CappedProblems
from mailsflux.jobs.progress import Progress
from mailsflux.jobs.rows import ProblemSink
from mailsflux.jobs.stoppable import run_until
from mailsflux.jobs.tlsreport import add_counts
from mailsflux.types import DeliveryResult, JobSummary, Problem, RenderedMessage

#: Messages the producer composes before it hands them to the scheduler
#: together (one scheduler batch): the first session starts that much later.
SUBMIT_BATCH = 32

_T = TypeVar("_T")


class Source(Protocol):
    """What :func:`send` sends: a job file's rows (:class:`~mailsflux.jobs.Prepared`)
    or any other stream of composed messages under a job's settings."""

    @property
    def job(self) -> Job: ...
    @property
    def where(self) -> str: ...
    @property
    def suppressed(self) -> Container[str] | None: ...
    def suppress_bounce(self, r: DeliveryResult) -> None: ...
    def messages(
        self, on_problem: ProblemSink, *, shard: tuple[int, int] = (0, 1)
    ) -> Iterable[RenderedMessage] | AsyncIterable[RenderedMessage]: ...


def scheduler_for(
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
        resolver = MXResolver(
            nameservers=servers, port=d.mx_port, trust_remote_ad=d.trust_remote_ad
        )
    if throttles is None:
        if d.throttle == "local":
            throttles = LocalThrottles()
        else:
            # Imported here: jobs without a shared throttle never load the redis client.
            from mailsflux.delivery.throttle_redis import RedisThrottles

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
    scheduler = Scheduler(
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
        lease_ttl=d.lease_ttl,
        credentials=credentials,
        local_hostname=ehlo_name,
        tls_context=tls_context,
    )
    if relay is None and resolver.smarthost is None and (d.mta_sts or d.dane):
        # Imported here: jobs without MTA-STS or DANE never load it.
        from mailsflux.delivery.tlspolicy import TLSPolicies

        scheduler.tls_policy = TLSPolicies(
            resolver,
            mta_sts=d.mta_sts,
            dane=d.dane,
            verify=tls_context,
            cache=spool_dir(job) / "mta-sts.json" if job.spec.spool.enabled else None,
            # A policy fetch holds up the domain's first message: kept short.
            timeout=min(d.timeout, 10.0),
        )
    return scheduler


async def send(
    prepared: Source,
    relay: Relay | None = None,
    *,
    on_problem: ProblemSink,
    on_result: Callable[[DeliveryResult], None] | None = None,
    on_results: Callable[[Sequence[DeliveryResult]], None] | None = None,
    progress: Progress | None = None,
    events: IO[bytes] | None = None,
    check_relay: bool = True,
    resolver: MXResolver | None = None,
    throttles: Throttles | None = None,
    shard: tuple[int, int] = (0, 1),
    stop: asyncio.Event | None = None,
    hard_stop: asyncio.Event | None = None,
    summary: JobSummary | None = None,
    journal: Journal | None = None,
    attempts: int | None = None,
) -> JobSummary:
    """Send every good row of the job; return the tally.

    Setting ``stop`` ends the job within moments: open sessions are dropped
    and the tally so far comes back with ``interrupted`` set.

    ``on_result`` hears every result; given ``on_results`` too, a batch the
    scheduler reported all delivered goes to that in one call instead.

    With a ``journal`` every result is recorded in the spool (once per
    batch), deferred messages are parked there, and a stop lets the batches
    in flight finish (up to ``[delivery] stop_grace`` seconds, or until
    ``hard_stop``).
    ``attempts`` overrides the job's in-run attempts (a queue run: one).

    ``relay`` overrides the job's relay; with neither, mail goes to MX hosts
    (``resolver`` lets tests use their own DNS server). ``shard=(i, n)``
    sends only this worker's share of the rows. ``summary``, when given, is
    the tally kept up to date while the job runs (live counts).
    """
    spec = prepared.job.spec.delivery
    if summary is None:
        summary = JobSummary(job=prepared.job.name)
    per_domain: Counter[str] = Counter()
    log = EventLog(events, prepared.job.name)
    if relay is None:
        relay = prepared.job.relay()
    report = CappedProblems(on_problem, where=prepared.where)

    rows_at = prepared.where + ":"

    def problem(p: Problem) -> None:
        summary.total += 1
        summary.skipped += 1
        report(p)
        if journal is not None and p.where.startswith(rows_at):
            # A row skipped as it was read (bad, duplicate, suppressed) is
            # settled too: status counts it, and a resume passes it over.
            row = p.where[len(rows_at) :]
            if row.isdigit():
                journal.skip(int(row), suppressed="suppressed;" in p.message)
        if progress is not None:
            progress.advance()

    def record(what: str, step: Callable[[_T], object], r: _T) -> bool:
        try:
            step(r)
        except Exception as exc:
            if not summary.record_error:
                summary.record_error = f"{what}: {type(exc).__name__}: {exc}"
            return False
        return True

    def result(r: DeliveryResult) -> None:
        if journal is not None:
            # First: the spool decides whether a deferral has expired.
            r = journal.settle(r)
        # Counted first: a failing log, store or callback must not lose the tally.
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
        recorded(r)

    def recorded(r: DeliveryResult) -> None:
        # Each step on its own: the event log first (it is the record of
        # what was sent), and one failing step never skips the others.
        ok = record("events file", log.result, r) if events is not None else True
        if r.status == "bounced":  # only a bounce can suppress anyone
            ok &= record("suppression list", prepared.suppress_bounce, r)
        if on_result is not None:
            ok &= record("result callback", on_result, r)
        if progress is not None:
            ok &= record("progress display", lambda _: progress.advance(), r)
        summary.record_failures += not ok

    def recorded_many(rs: list[DeliveryResult]) -> None:
        # recorded() for a delivered batch (none bounced): each step for the
        # whole batch in turn, the event log first; a message counts once
        # among the failures however many of its steps failed.
        failed: set[int] = set()
        if events is not None:
            failed.update(i for i, r in enumerate(rs) if not record("events file", log.result, r))
        if on_results is not None:
            if not record("result callback", on_results, rs):
                failed.update(range(len(rs)))
        elif on_result is not None:
            failed.update(
                i for i, r in enumerate(rs) if not record("result callback", on_result, r)
            )
        if progress is not None and not record("progress display", progress.advance, len(rs)):
            failed.update(range(len(rs)))
        summary.record_failures += len(failed)

    # No step to take but counting (a job without events, callback or display).
    steps = any(s is not None for s in (events, on_result, on_results, progress))

    def delivered(rs: list[DeliveryResult]) -> None:
        # result() for a batch the scheduler reported all delivered: the
        # same steps, each for the whole batch in turn (recorded_many),
        # without a chain of calls a message.
        if journal is not None:
            domains = journal.settle_delivered(rs)
        else:
            domains = _domains(rs)
        summary.total += len(rs)
        summary.sent += len(rs)
        per_domain.update(domains)
        if steps:
            recorded_many(rs)

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
    scheduler = scheduler_for(
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
    scheduler.on_delivered = delivered
    if attempts is not None:
        scheduler.retry = msgspec.structs.replace(scheduler.retry, attempts=attempts)
    halt = stop
    if journal is not None:
        scheduler.park = journal.park
        scheduler.after_batch = journal.flush
        halt = asyncio.Event()
        watch = asyncio.ensure_future(_either(halt, stop, journal.broken))
        claims = asyncio.ensure_future(journal.keep_claims())
    start = time.perf_counter()

    async def produce() -> None:
        if isinstance(prepared, Prepared):
            # A job file's rows: each composed batch handed over as it is
            # (most find room and a cached route, and are queued without
            # a coroutine or a turn of a Python loop each).
            submit_many = scheduler.submit_many
            for batch, problems in prepared.batches(shard=shard):
                for _, p in problems:
                    problem(p)
                if batch:
                    await submit_many(batch)
            await scheduler.close()
            return
        messages = prepared.messages(problem, shard=shard)
        if isinstance(messages, AsyncIterable):
            submit = scheduler.submit
            async for msg in messages:
                await submit(msg)
        else:
            # Handed over SUBMIT_BATCH at a time: most find room and a cached
            # route, and are queued without a coroutine each.
            submit_many, batch = scheduler.submit_many, []
            for msg in messages:
                batch.append(msg)
                if len(batch) == SUBMIT_BATCH:
                    await submit_many(batch)
                    batch = []
            await submit_many(batch)
        await scheduler.close()

    try:
        if not await run_until(produce(), halt):
            summary.interrupted = True
            if journal is not None:
                await scheduler.drain(spec.stop_grace, hard_stop)
            else:
                await scheduler.abort()
    except BaseException:
        await scheduler.abort()  # no session or task outlives a failed job
        raise
    finally:
        if journal is not None:
            watch.cancel()
            claims.cancel()
            failure = journal.error
            journal.flush()
        await scheduler.throttles.close()
        report.finish()
    if journal is not None and failure is not None:
        raise SpoolError(
            f"the spool could not be written ({failure}); the job stopped after"
            f" {summary.total} results. What was sent and not recorded is sent again when"
            " the job resumes (`mailsflux send` the same job once the spool has room)"
        )
    summary.record_failures += scheduler.callback_failures
    summary.elapsed = time.perf_counter() - start
    summary.per_domain = dict(per_domain.most_common())
    if scheduler.tls_policy is not None:
        summary.tls = dict(sorted(scheduler.tls_policy.counts.items()))
        directory = getattr(journal.spool, "directory", None) if journal is not None else None
        if journal is not None and isinstance(directory, Path):
            add_counts(directory, journal.info.id, summary.tls)
    if progress is not None:
        progress.finish(complete=not summary.interrupted)
    return summary


async def _either(out: asyncio.Event, *events: asyncio.Event | None) -> None:
    """Set ``out`` once any of ``events`` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events if e is not None]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        out.set()
    finally:
        for w in waits:
            w.cancel()


__all__ = ["Source", "scheduler_for", "send"]
