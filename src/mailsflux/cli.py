"""The ``mailsflux`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec

from mailsflux import __version__
from mailsflux.delivery.relay import Relay
from mailsflux.dkim.keyfiles import txt_path_for
from mailsflux.errors import ConfigError, DKIMError, MailsfluxError
from mailsflux.jobs.jobfile import DeliverySpec, check_ehlo_name
from mailsflux.jobs.journal import count_bits
from mailsflux.jobs.progress import Progress
from mailsflux.jobs.tlsreport import count_lines, merge_counts
from mailsflux.types import JobSummary, Problem, TLSCounts

if TYPE_CHECKING:
    from mailsflux._fork import Forked
    from mailsflux.jobs import Prepared
    from mailsflux.jobs.jobfile import Job
    from mailsflux.jobs.journal import Journal
    from mailsflux.spool import SpoolKeys

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _print_problem(p: Problem) -> None:
    print(str(p), file=sys.stderr, flush=True)


def _problem_doc(p: Problem) -> dict[str, str]:
    return {"where": p.where, "what": p.message, "severity": p.severity}


def _print_problem_json(p: Problem) -> None:
    print(msgspec.json.encode(_problem_doc(p)).decode(), file=sys.stderr, flush=True)


class _Stop:
    """SIGINT or SIGTERM during a job: stop it, keep its counts, exit 128 + signal."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        #: A second signal: stop at once, without waiting for batches in flight.
        self.hard = asyncio.Event()
        self.signum = 0
        self.forward: list[asyncio.subprocess.Process | Forked] = []
        # Until the event loop runs (loading the job, starting workers) a signal
        # is only noted; the loop then stops at once.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._noted)

    def _noted(self, sig: int, frame: object) -> None:
        self.signum = self.signum or sig

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._hit, sig)
        if self.signum:
            self._hit(self.signum)

    def uninstall(self) -> None:
        """Back to noting signals before the loop closes, which would reset them
        to the default (death, counts lost) while the summary is printed."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, self._noted)

    def _hit(self, sig: int) -> None:
        if self.event.is_set():
            self.hard.set()
        self.signum = self.signum or sig
        self.event.set()
        for proc in self.forward:
            self.pass_on(proc)

    def pass_on(self, proc: asyncio.subprocess.Process | Forked) -> None:
        """Hand the stop to a worker process, which stops and reports its counts."""
        if self.signum and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _print_summary(s: JobSummary, sink: dict[str, Any] | None, rows: int) -> None:
    out = sys.stdout
    if s.resumed:
        print(
            f"\nresumed: {s.resumed} rows settled by an earlier run were not sent again", file=out
        )
    if s.interrupted:
        print(f'\njob "{s.job}" interrupted after {s.elapsed:.2f} s; counts so far:', file=out)
    else:
        print(f'\njob "{s.job}" finished in {s.elapsed:.2f} s', file=out)
    print(f"  sent      {s.sent}", file=out)
    print(f"  failed    {s.failed}", file=out)
    print(f"  deferred  {s.deferred}", file=out)
    print(
        f"  skipped   {s.skipped}" + (" (bad rows, reported above)" if s.skipped else ""), file=out
    )
    if s.quarantined:
        print(
            f"  set aside {s.quarantined} (in batches that do not authenticate: not sent)", file=out
        )
    if s.interrupted:
        # With the spool, batches in flight were finished and recorded (up to
        # stop_grace): the rest were never tried, and a resumed run sends them.
        print(
            f"  not done  {max(rows - s.total, 0)} (not tried yet: run the job again to resume it)",
            file=out,
        )
    print(f"  rate      {s.rate:.1f} msg/s", file=out)
    if s.per_domain:
        print("  per domain (sent):", file=out)
        width = max(len(d) for d in s.per_domain)
        for d, n in list(s.per_domain.items())[:20]:
            print(f"    {d:<{width}}  {n}", file=out)
        if len(s.per_domain) > 20:
            print(f"    ... and {len(s.per_domain) - 20} more domains", file=out)
    for line in count_lines(s.tls):
        print(f"  {line}", file=out)
    if sink is not None:
        print(
            f"local sink received {sink.get('messages', 0)} messages, "
            f"{sink.get('dkim_signed', 0)} DKIM-signed, {sink.get('octets', 0) / 1e6:.1f} MB",
            file=out,
        )


def _shard(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit() and 0 <= int(i) < int(n)):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return int(i), int(n)


def _ehlo(text: str) -> str:
    try:
        return check_ehlo_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number 0 or more, got {text!r}")
    return int(text)


def _relay_url(text: str) -> str:
    """Checked here so a bad URL is a usage error naming --relay, not a traceback."""
    try:
        Relay.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


#: A relay URL read from the environment, not argv: `ps` shows every process's
#: argv to every user, while /proc/PID/environ is its owner's alone. Worker
#: processes get the relay this way too.
RELAY_ENV = "MAILSFLUX_RELAY"


def _env_relay() -> str | None:
    url = os.environ.get(RELAY_ENV) or None
    if url is not None:
        try:
            Relay.parse(url)
        except ValueError as exc:
            raise ConfigError(f"{RELAY_ENV}: {exc}") from None
    return url


def cmd_send(args: argparse.Namespace) -> int:
    if args.redis:
        from mailsflux.cli_worker import cmd_send_redis

        return cmd_send_redis(args)
    if args.relay is None:
        args.relay = _env_relay()
    stop = _Stop()
    prepared = _prepare(args.job)
    d = prepared.job.spec.delivery
    workers = args.workers if args.workers is not None else d.workers
    workers = workers or os.cpu_count() or 1
    if args.shard is None and d.throttle == "local" and workers > (cap := _local_worker_cap(d)):
        print(
            f"mailsflux: {workers} workers would exceed the job's per-site limits with"
            f' throttle = "local"; using {cap} (a redis:// throttle shares limits)',
            file=sys.stderr,
        )
        workers = cap
    checked = _authenticate(args, prepared)
    journal = _journal(args, prepared)
    # A worker process (--shard, started quiet) shows no progress and reports
    # JSON, so it needs no total: its parent counted the rows once. Counting
    # is a whole pass over the file, a microsecond a row in every process.
    total = prepared.count_rows() if args.shard is None or not args.quiet else 0
    if journal is not None and args.shard is None:
        journal.spool.set_total(journal.id, total)
    resumed = count_bits(prepared.settled) if prepared.settled is not None else 0
    rows = max(total - resumed, 0)  # what this run has left to do
    if workers > 1 and args.shard is None:
        prepared.close()
        code = _send_parallel(args, workers, stop, prepared, journal, rows, resumed)
        if journal is not None:
            _end_journal(args, journal, bool(stop.signum))
            journal.spool.close()
        return code
    return _send_here(args, stop, prepared, journal, checked, rows, resumed)


def _send_here(
    args: argparse.Namespace,
    stop: _Stop,
    prepared: Prepared,
    journal: Journal | None,
    checked: bool,
    rows: int,
    resumed: int,
) -> int:
    """Run the job (or with ``args.shard`` its share) in this process."""
    # Imported only where the engine runs (one process, or a worker): the
    # parent of spawned worker processes never needs it.
    from mailsflux.engine import Config, Engine
    from mailsflux.jobs.jobfile import SpoolSpec

    d = prepared.job.spec.delivery
    relay = Relay.parse(args.relay) if args.relay else prepared.job.relay()
    if args.connections:
        d.connections = args.connections
    d.ehlo_name = args.ehlo_name or d.ehlo_name
    events = None
    if args.events:
        keys = None if args.events_plain else _job_keys(prepared.job)
        events = _open_events(args.events, keys)
    progress = None if args.quiet or args.json else Progress(rows)
    shard = args.shard or (0, 1)

    async def deliver(r: Relay | None) -> JobSummary:
        # The same Engine an embedder uses: one code path for batch jobs. The
        # job's own spool is the journal; the engine's spool (for one-off
        # sends) stays closed, so this run never opens it at start-up nor
        # takes up an embedding app's deferred messages.
        async with Engine(Config(spool=SpoolSpec(enabled=False))) as engine:
            handle = await engine.submit(
                prepared,
                relay=r,
                on_problem=_print_problem_json if args.json else _print_problem,
                progress=progress,
                events=events,
                shard=shard,
                stop=stop.event,
                hard_stop=stop.hard,
                keep_results=False,
                journal=journal,
                check_authentication=not checked,
            )
            s = await handle.wait()
            s.resumed = resumed
            return s

    async def go() -> tuple[JobSummary, dict[str, Any] | None]:
        stop.install()
        try:
            if args.local_sink:
                # Imported here: the sink is aiosmtpd (tens of ms), and every
                # worker process of a job runs this function.
                from mailsflux.delivery.sink import LocalSink

                async with LocalSink(save=args.sink_save) as sink:
                    s = await deliver(Relay(host=sink.host, port=sink.port, tls="none"))
                return s, sink.tally
            return await deliver(relay), None
        finally:
            stop.uninstall()

    try:
        summary, tally = _run(go())
    finally:
        prepared.close()
        if events is not None:
            events.close()
    code = _report(args, summary, tally, stop, rows)
    if journal is not None:
        if args.shard is None:
            _end_journal(args, journal, summary.interrupted)
        journal.spool.close()
    return code


#: Set by a `send --workers N` parent for its workers: it checked the job's
#: SPF/DKIM/DMARC once, so N processes do not ask DNS N times. The value is
#: an HMAC of the job (path and content) under a secret made for the run and
#: written to the worker's stdin: a hand-set value (or a job edited since) is
#: not taken, and the worker checks the job itself.
AUTH_CHECKED_ENV = "MAILSFLUX_AUTH_CHECKED"


def _auth_token(secret: bytes, job: str) -> str:
    import hashlib
    import hmac

    path = os.path.realpath(job)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return hmac.new(secret, f"{path}\0{digest}".encode(), "sha256").hexdigest()


def _parent_checked(job: str) -> bool:
    """True when this worker's parent checked ``job`` (see AUTH_CHECKED_ENV)."""
    import hmac

    token = os.environ.get(AUTH_CHECKED_ENV)
    if not token or sys.stdin is None or sys.stdin.isatty():
        return False
    try:
        secret = bytes.fromhex(sys.stdin.read(64))
        return len(secret) == 32 and hmac.compare_digest(token, _auth_token(secret, job))
    except (ValueError, OSError):
        return False


def _authenticate(args: argparse.Namespace, prepared: Prepared) -> bool:
    """Check the job's SPF/DKIM/DMARC before its journal is opened (a refused
    job leaves no trace in the spool), once for all worker processes. True
    when the check is done (the Engine then leaves it)."""
    if args.shard is not None and _parent_checked(args.job):
        return True
    # The local sink listens on loopback: SPF then falls to [delivery] source_ip.
    relay = Relay(host="127.0.0.1", port=25) if args.local_sink else None
    relay = Relay.parse(args.relay) if args.relay else relay
    try:
        check_job(prepared.job, relay, json=args.json)
    except BaseException:
        prepared.close()
        raise
    return True


def check_job(job: Job, relay: Relay | None, *, json: bool) -> None:
    """The job's outbound authentication by its setting; a reserved From
    domain gets its one notice line instead."""
    from mailsflux.authcheck import Checker, exemption

    note = exemption(job)
    if note is not None:
        if not json:
            print(f"{job.path}: notice: {note}", file=sys.stderr)
        return
    problem = _print_problem_json if json else _print_problem

    def warn(message: str) -> None:
        problem(Problem(job.name, message, "warning"))

    _run(Checker().job(job, relay, warn))


def _journal(args: argparse.Namespace, prepared: Prepared) -> Journal | None:
    """The job's spool journal (resuming an interrupted run), or None with --no-spool."""
    from mailsflux.jobs.journal import open_spool, start

    job = prepared.job
    if args.no_spool or not job.spec.spool.enabled:
        return None
    spool = open_spool(job)
    # Worker processes resume what their parent began (or restarted).
    try:
        journal = start(
            job, spool, restart=args.restart and args.shard is None, joining=args.shard is not None
        )
    except BaseException:
        spool.close()
        raise
    prepared.settled = journal.settled()
    if args.shard is None and not args.json and any(prepared.settled):
        done = count_bits(prepared.settled)
        how = "finished" if journal.info.state == "finished" else "was interrupted"
        print(
            f'mailsflux: job "{job.name}" {how} before: {done} rows already settled'
            " (sent, bounced, failed, or deferred into the spool) are not sent again;"
            " --restart sends the whole job again",
            file=sys.stderr,
        )
    return journal


def _end_journal(args: argparse.Namespace, journal: Journal, interrupted: bool) -> None:
    import time

    spool = journal.spool
    spool.end_job(journal.id, "interrupted" if interrupted else "finished")
    # Nothing waits (the usual end): found through the index of waiting rows,
    # without counting the job's every row by state.
    nxt = spool.next_due(journal.id)
    if nxt is None or args.json:
        return
    counts = spool.counts(journal.id)
    waiting = counts.get("deferred", 0) + counts.get("pending", 0)
    if waiting:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(nxt))
        mins = max(nxt - time.time(), 0) / 60
        print(
            f"  {waiting} deferred in the spool ({spool.directory}); next attempt {when}"
            f" (in {mins:.0f} min): `mailsflux queue run` tries every due message once,"
            " `mailsflux serve` keeps trying until they are delivered or expire",
            file=sys.stdout,
        )


def _open_events(path: str, keys: SpoolKeys | None) -> IO[bytes]:
    """The event log: owner-only (0600), its personal fields sealed with
    ``keys`` (None: plain, only with ``--events-plain``). Unbuffered: each
    event is one write() to an O_APPEND file, so the lines of several
    worker processes never interleave."""
    from mailsflux.sealedlines import open_append

    return open_append(path, keys)


def _job_keys(job: Job) -> SpoolKeys:
    """The job spool's key ring (its file made when missing): events files are
    sealed with it even when the job keeps no spool."""
    from mailsflux.jobs.journal import spool_dir
    from mailsflux.spool import SpoolKeys

    s = job.spec.spool
    return SpoolKeys.load(job.resolve(s.key_file) if s.key_file else spool_dir(job) / "keys")


def _local_worker_cap(d: DeliverySpec) -> int:
    """With in-process throttles each worker holds a share of every limit,
    so there can be no more workers than the smallest connection count (or
    burst, when a rate is set) lets each hold at least one."""
    caps = [d.connections] + [o.connections for o in d.domains.values() if o.connections]
    if d.rate or d.job_rate:
        caps.append(d.burst)
    caps += [o.burst for o in d.domains.values() if o.burst and (o.rate or d.rate)]
    return max(1, min(caps))


def _send_parallel(
    args: argparse.Namespace,
    workers: int,
    stop: _Stop,
    prepared: Prepared,
    journal: Journal | None,
    rows: int,
    resumed: int = 0,
) -> int:
    """Run the job in ``workers`` processes, each taking every N-th row:
    forked from this one, which has read the job, where it can (see
    :mod:`mailsflux._fork`), else started anew as ``send --shard I/N``."""
    import time

    from mailsflux._fork import why_not_fork

    start = time.perf_counter()
    if why_not_fork() is None:
        docs, tally = _run_forked(args, workers, stop, prepared, journal, resumed)
    else:
        docs, tally = _run_spawned(args, workers, stop)
    # Each worker saw the whole job's settled rows: the parent counts them once.
    summary = JobSummary(
        job=prepared.job.name, elapsed=time.perf_counter() - start, resumed=resumed
    )
    per_domain: dict[str, int] = {}
    for doc in docs:
        summary.total += doc["total"]
        summary.sent += doc["sent"]
        summary.failed += doc["failed"]
        summary.deferred += doc["deferred"]
        summary.skipped += doc["skipped"]
        summary.interrupted |= doc.get("interrupted", False)
        summary.record_failures += doc.get("record_failures", 0)
        summary.record_error = summary.record_error or doc.get("record_error", "")
        for dom, n in doc["per_domain"].items():
            per_domain[dom] = per_domain.get(dom, 0) + n
        merge_counts(summary.tls, msgspec.convert(doc.get("tls", {}), dict[str, TLSCounts]))
    summary.per_domain = dict(sorted(per_domain.items(), key=lambda kv: -kv[1]))
    if not args.json:
        print(f"{workers} worker processes", file=sys.stderr)
    summary.interrupted |= bool(stop.signum)
    return _report(args, summary, tally, stop, rows)


_Docs = tuple[list[dict[str, Any]], dict[str, Any] | None]


def _gather_workers(
    args: argparse.Namespace,
    workers: int,
    stop: _Stop,
    child: Callable[[int, str | None], Awaitable[dict[str, Any]]],
) -> _Docs:
    """Each worker's summary, ``child(i, relay)`` run for each in this
    process's event loop; with ``--local-sink`` the sink runs here too."""

    async def each(relay: str | None) -> list[dict[str, Any]]:
        tasks = [asyncio.ensure_future(child(i, relay)) for i in range(workers)]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [e for t in tasks if t.done() and (e := t.exception()) is not None]
        if failed:
            # One worker died: the others stop as on SIGTERM, finishing and
            # recording the batches they have in flight (killed, they would
            # leave sent messages unrecorded, sent again on resuming).
            for proc in stop.forward:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            await asyncio.wait(tasks)
            for t in tasks:
                t.exception()  # theirs, once stopped, are not news
            raise failed[0]
        return [t.result() for t in tasks]

    async def go() -> _Docs:
        stop.install()
        try:
            if args.local_sink:
                from mailsflux.delivery.sink import LocalSink

                async with LocalSink(save=args.sink_save) as sink:
                    docs = await each(f"smtp+plain://{sink.host}:{sink.port}")
                return docs, sink.tally
            return await each(args.relay), None
        finally:
            stop.uninstall()

    return _run(go())


def _worker_doc(i: int, workers: int, code: int | None, out: bytes, stop: _Stop) -> dict[str, Any]:
    """Worker ``i``'s summary from what it wrote on stdout and its exit code."""
    lines = out.decode().strip().splitlines()
    if stop.signum and code == -stop.signum:
        # Stopped while Python was still starting, before it could send anything.
        empty: dict[str, Any] = msgspec.to_builtins(JobSummary(job="", interrupted=True))
        return empty
    ok = (0, 1, 128 + signal.SIGINT, 128 + signal.SIGTERM) if stop.signum else (0, 1)
    if code not in ok or not lines:
        raise MailsfluxError(f"worker {i}/{workers} failed (exit {code})")
    doc: dict[str, Any] = msgspec.json.decode(lines[-1])
    return doc


def _run_forked(
    args: argparse.Namespace,
    workers: int,
    stop: _Stop,
    prepared: Prepared,
    journal: Journal | None,
    resumed: int,
) -> _Docs:
    """The workers forked from this process, which has imported what they
    run, read and checked the job, loaded its key and compiled its
    templates: each child only opens its own spool and event store, and
    sends its share as ``--shard I/N`` would."""
    from mailsflux._fork import fork_workers
    from mailsflux.jobs.journal import Journal, open_spool

    # Imported before the fork, once for every worker (what they import
    # after it, each on its own, is their start-up).
    _preload_engine(args, prepared.job)

    def run(i: int, relay: str | None) -> int:
        # In the child: a stop of its own (no workers to pass it on to), which
        # keeps a signal noted before the fork.
        own = _Stop()
        own.signum = own.signum or stop.signum
        wargs = argparse.Namespace(**vars(args))
        wargs.shard, wargs.quiet, wargs.relay, wargs.local_sink = (i, workers), True, relay, False

        def share() -> int:
            prepared.reopen()
            joined = None
            if journal is not None:
                joined = Journal(open_spool(prepared.job), journal.info, prepared.job)
            return _send_here(wargs, own, prepared, joined, True, 0, resumed)

        return _guarded(share)

    async def child(i: int, relay: str | None) -> dict[str, Any]:
        c = children[i]
        c.start(relay)
        out = await c.communicate()
        return _worker_doc(i, workers, c.returncode, out, stop)

    # No SQLite connection crosses the fork: this one is opened again after.
    if journal is not None:
        journal.spool.close()
    try:
        children = fork_workers(workers, run)
        stop.forward.extend(children)
        try:
            return _gather_workers(args, workers, stop, child)
        finally:
            for c in children:
                c.kill()  # a worker left when another failed; the rest are reaped
    finally:
        if journal is not None:
            journal.spool = open_spool(prepared.job)


def _preload_engine(args: argparse.Namespace, job: Job) -> None:
    """What a worker imports to run the engine, imported in its parent before
    the fork (the event loop, the thread pool of ``asyncio.to_thread``: not
    started, only imported), and the TLS context its SMTP sessions start
    from: the system's trust store, 50 ms to load in each process."""
    import concurrent.futures.thread  # noqa: F401

    import mailsflux.engine  # noqa: F401
    from mailsflux.delivery.smtp import _default_context

    with contextlib.suppress(ImportError):  # not on Windows, which has no fork
        import uvloop  # noqa: F401

    # The one the workers' sessions take (SMTPSession.open): a checking one
    # for a relay with required or implicit TLS (unless tls_ca makes its
    # own), the opportunistic one for MX delivery and a relay that offers
    # STARTTLS; none for a plain relay or the local sink (no TLS at all).
    if args.local_sink:
        return
    relay = Relay.parse(args.relay) if args.relay else job.relay()
    if relay is not None and relay.session_tls == "none":
        return
    verify = relay is not None and relay.session_tls in ("required", "implicit")
    if not (verify and job.spec.delivery.tls_ca):
        _default_context(verify)


def _run_spawned(args: argparse.Namespace, workers: int, stop: _Stop) -> _Docs:
    """The workers started as new processes (``send --shard I/N``), where
    this one cannot fork them."""
    import secrets as _secrets

    secret = _secrets.token_bytes(32)  # proves this run's check to its workers

    async def child(i: int, relay: str | None) -> dict[str, Any]:
        # A worker reports its summary as JSON on stdout (--shard); its problems
        # go to the shared stderr in the format asked of the parent.
        cmd = [sys.executable, "-m", "mailsflux", "send", args.job, "-q"]
        cmd += ["--shard", f"{i}/{workers}"] + (["--json"] if args.json else [])
        env = {k: v for k, v in os.environ.items() if k != RELAY_ENV}
        env[AUTH_CHECKED_ENV] = _auth_token(secret, args.job)  # checked once, by this process
        if relay:
            env[RELAY_ENV] = relay  # never in argv, where `ps` shows its password
        if args.connections:
            cmd += ["--connections", str(args.connections)]
        if args.ehlo_name:
            cmd += ["--ehlo-name", args.ehlo_name]
        if args.events:
            cmd += ["--events", args.events] + (["--events-plain"] if args.events_plain else [])
        if args.no_spool:
            cmd += ["--no-spool"]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        stop.forward.append(proc)
        stop.pass_on(proc)  # a stop that came while it started
        out = await _hand_over(proc, secret.hex().encode())
        return _worker_doc(i, workers, proc.returncode, out, stop)

    return _gather_workers(args, workers, stop, child)


async def _hand_over(proc: asyncio.subprocess.Process, data: bytes) -> bytes:
    """Write ``data`` to a started worker's stdin and return its stdout once
    it exits. A worker that died before its stdin was written (killed while
    starting) is reported by its exit code, not by a write to a closed pipe:
    uvloop raises RuntimeError for that, not BrokenPipeError, so
    ``communicate(data)`` would turn the worker's death into a traceback."""
    stdin = proc.stdin
    if stdin is not None:
        # No callback runs between the check and the write: one loop step.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if not stdin.transport.is_closing():
                stdin.write(data)
                await stdin.drain()
        stdin.close()
    out, _ = await proc.communicate()
    return out


def _report(
    args: argparse.Namespace,
    summary: JobSummary,
    tally: dict[str, Any] | None,
    stop: _Stop,
    rows: int,
) -> int:
    if args.json or args.shard is not None:
        doc = msgspec.to_builtins(summary)
        doc["rate"] = summary.rate
        if tally is not None:
            doc["local_sink"] = tally
        print(msgspec.json.encode(doc).decode(), flush=True)
    else:
        _print_summary(summary, tally, rows)
    if summary.interrupted:
        name = signal.Signals(stop.signum).name if stop.signum else "a stop"
        if args.shard is None:
            print(f"mailsflux: stopped by {name}", file=sys.stderr)
        return stop.exit_code if stop.signum else 1
    if summary.record_failures:
        # Delivered mail stays delivered, but the records of it are incomplete:
        # the run must not look clean.
        print(
            f"mailsflux: {summary.record_failures} results could not be recorded "
            f"(first: {summary.record_error or 'result callback failed'})",
            file=sys.stderr,
        )
        return 1
    if (
        summary.total
        and not summary.sent
        and getattr(args, "shard", None) is None
        and not (summary.resumed and summary.total == summary.skipped)
    ):
        # Rows were read and none went out: that is a failed job, whatever the cause.
        print(
            f"mailsflux: error: nothing sent: {summary.total} rows read, {summary.skipped}"
            f" skipped, {summary.failed} failed, {summary.deferred} deferred",
            file=sys.stderr,
        )
        return 1
    return 1 if summary.failed or summary.deferred else 0


def _prepare(job_path: str) -> Prepared:
    """Load a job, saying what was created on first use (key, tracking config)."""
    from mailsflux.jobs import Prepared
    from mailsflux.jobs.jobfile import load_job

    job = load_job(job_path)
    new_key = job.spec.dkim.generate and not job.key_path.exists()
    tpath = job.tracking_path
    new_tracking = tpath is not None and not tpath.exists()
    prepared = Prepared(job)
    if new_key:
        _announce_key(job.key_path, job.spec.dkim.domain)
    if new_tracking and prepared.tracking is not None:
        print(
            f"generated tracking config {tpath} (keys and store secret: keep it private);"
            f" run the tracking server with: mailsflux track-server --config {tpath}",
            file=sys.stderr,
        )
    return prepared


def _announce_key(key_path: Path, domain: str) -> None:
    txt = txt_path_for(key_path)
    print(
        f"generated DKIM key {key_path}; publish this TXT record in the DNS of {domain}"
        f" (also written to {txt}):\n  {txt.read_text().strip()}",
        file=sys.stderr,
    )


def cmd_render(args: argparse.Namespace) -> int:
    from mailsflux.jobs import render_to_dir

    prepared = _prepare(args.job)
    try:
        done = render_to_dir(
            prepared, Path(args.out), limit=args.limit, on_problem=_print_problem, force=args.force
        )
    finally:
        prepared.close()
    print(f"wrote {len(done.written)} messages to {args.out}")
    if done.unwritten:
        print(f"{done.unwritten} could not be written (reported above)")
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mailsflux.jobs import validate

    problems = validate(args.job)
    if not any(p.severity == "error" for p in problems):
        problems += _validate_authentication(args.job)
    errors = sum(p.severity == "error" for p in problems)
    if args.json:
        doc = {
            "job": args.job,
            "valid": not errors,
            "errors": errors,
            "warnings": len(problems) - errors,
            "problems": [_problem_doc(p) for p in problems],
        }
        print(msgspec.json.encode(doc).decode())
        return 1 if errors else 0
    for p in problems:
        _print_problem(p)
    if errors:
        print(f"{errors} error(s), {len(problems) - errors} warning(s)")
        return 1
    print(f"job is valid ({len(problems)} warning(s))")
    return 0


def _validate_authentication(path: str) -> list[Problem]:
    """What `send` would say of the job's SPF/DKIM/DMARC: an error each under
    "enforce", a warning each under "warn"; nothing for a reserved domain
    or a key not generated yet."""
    from mailsflux.authcheck import Checker, exemption
    from mailsflux.jobs.jobfile import load_job

    job = load_job(path)
    mode = job.spec.delivery.authentication
    if mode == "off" or exemption(job) is not None or not job.key_path.exists():
        return []
    found: list[Problem] = []
    try:
        _run(Checker().job(job, None, lambda m: found.append(Problem(path, m, "warning"))))
    except MailsfluxError as exc:
        found += [Problem(path, line.strip(), "error") for line in exc.message.splitlines()[1:]]
        found = found or [Problem(path, exc.message, "error")]
    return found


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from mailsflux.dkim.keygen import write_key_pair
    from mailsflux.errors import DKIMKeyError

    try:
        key, txt = write_key_pair(
            args.out,
            domain=args.domain,
            selector=args.selector,
            algorithm=args.algorithm,
            bits=args.bits,
            overwrite=args.force,
        )
    except DKIMKeyError as exc:
        if not args.force and exc.file and Path(exc.file).exists():
            # The library's wording names its keyword; here the switch is --force.
            raise DKIMKeyError("key file exists (--force replaces it)", file=exc.file) from None
        raise
    print(f"private key: {key}\nDNS record:  {txt}\n{txt.read_text().strip()}")
    return 0


# A header field name (RFC 5322 2.2: printable ASCII but ":"), then the colon;
# WSP before it is the obsolete syntax of RFC 5322 4.5, still met in the wild.
_FIELD_START = re.compile(rb"[!-9;-~]+[ \t]*:")


def cmd_sign(args: argparse.Namespace) -> int:
    from mailsflux.dkim import sign

    msg = sys.stdin.buffer.read()
    # An mbox "From " separator is no header field: a receiving MTA takes it
    # for the end of the header, so a signature over it would never verify.
    # "From : Alice <a@x>" (WSP before the colon, RFC 5322 4.5.1) is a field.
    mbox = msg.startswith(b"From ") and not _FIELD_START.match(msg)
    if mbox:
        msg = msg.partition(b"\n")[2]
    if not _FIELD_START.match(msg):
        raise DKIMError(
            "the message has no header: it must start with fields such as 'From: ...'",
            file="stdin",
        )
    if mbox:
        print("mailsflux: removed the mbox 'From ' line at the top before signing", file=sys.stderr)
    out = sign(
        msg, domain=args.domain, selector=args.selector, key=args.key, algorithm=args.algorithm
    )
    sys.stdout.buffer.write(out)
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from mailsflux.delivery.sink import main as sink_main

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.save:
        argv += ["--save", args.save]
    return sink_main(argv)


def _signing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--domain", required=True, help="signing domain (d=)")
    p.add_argument("--selector", required=True, help="selector (s=)")
    p.add_argument(
        "--algorithm",
        default="rsa-sha256",
        choices=["rsa-sha256", "ed25519-sha256"],
        help="signature algorithm (rsa-sha256)",
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; ``only="send"`` or ``"worker"``: the same with that
    command alone, for ``mailsflux send ...`` and ``mailsflux worker ...``
    (run once per worker process): building every command's options, and
    importing their modules, costs tens of milliseconds a process."""
    from mailsflux.cli_worker import redis_options

    ap = argparse.ArgumentParser(
        prog="mailsflux",
        description="Personalised, DKIM-signed mail delivered over SMTP.",
    )
    ap.add_argument("--version", action="version", version=f"mailsflux {__version__}")
    ap.add_argument(
        "--show-addresses",
        action="store_true",
        help="print addresses whole in problem lines, logs and listings (default: masked,"
        " j***@example.com); also MAILSFLUX_SHOW_ADDRESSES=1",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if only == "worker":
        from mailsflux.cli_worker import add_parser as add_worker_parser

        add_worker_parser(sub, _relay_url)
        return ap

    p = sub.add_parser("send", help="run a batch job: render, sign and deliver every row")
    p.add_argument("job", help="job file (TOML)")
    p.add_argument(
        "--local-sink", action="store_true", help="start a local SMTP sink and deliver into it"
    )
    p.add_argument(
        "--sink-save",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --local-sink: keep each received message in DIR",
    )
    p.add_argument(
        "--relay",
        type=_relay_url,
        metavar="URL",
        help="override the job's relay: smtp://, smtp+plain:// or smtps://[user:pass@]host[:port]"
        f" (visible in ps: put a password in the {RELAY_ENV} environment variable instead)",
    )
    p.add_argument(
        "--connections", type=int, default=0, metavar="N", help="override delivery.connections"
    )
    p.add_argument(
        "--ehlo-name", type=_ehlo, metavar="NAME", help="EHLO name; overrides delivery.ehlo_name"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (0 = one per core); overrides delivery.workers",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="internal, set for worker processes: send only rows I modulo N, report as JSON",
    )
    p.add_argument(
        "--events",
        metavar="FILE",
        help="append delivery events to FILE (JSON lines; recipients and replies sealed with"
        " the job spool's keys)",
    )
    p.add_argument(
        "--events-plain",
        action="store_true",
        help="write --events FILE in the clear (recipients and replies readable by anyone who"
        " can read the file): only when you need a plain export",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="summary as JSON on stdout; problems as JSON lines on stderr",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--restart",
        action="store_true",
        help="forget what an earlier run of this job settled and send every row again",
    )
    p.add_argument(
        "--no-spool",
        action="store_true",
        help="keep no spool: no resume, deferred messages are reported and dropped",
    )
    redis_options(p)
    p.set_defaults(func=cmd_send)
    if only == "send":
        return ap

    p = sub.add_parser("render", help="write finished messages as .eml files without sending")
    p.add_argument("job", help="job file (TOML)")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the .eml files (created if needed)"
    )
    p.add_argument(
        "--limit", type=_count, default=None, metavar="N", help="stop after N messages (0 or more)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace .eml files of the same name already in DIR"
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("validate", help="check a job and report every problem")
    p.add_argument("job", help="job file (TOML)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (problems with where, what, severity) on stdout",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("keys", help="DKIM keys; tenants' API keys and SMTP credentials")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    g = ksub.add_parser("generate", help="create a private key and the DNS TXT record to publish")
    _signing_options(g)
    g.add_argument("--bits", type=int, default=2048, help="RSA key size, 1024 to 4096 (2048)")
    g.add_argument(
        "--out", default=".", metavar="DIR", help="where SELECTOR.DOMAIN.pem and .txt go (.)"
    )
    g.add_argument("--force", action="store_true", help="replace existing key files")
    g.set_defaults(func=cmd_keys_generate)
    from mailsflux.cli_rotate import add_rotate_parser
    from mailsflux.cli_server import add_key_parsers

    add_key_parsers(ksub)
    add_rotate_parser(ksub)

    p = sub.add_parser("sign", help="DKIM-sign a message from stdin to stdout")
    _signing_options(p)
    p.add_argument("--key", required=True, metavar="FILE", help="private key (PEM)")
    p.set_defaults(func=cmd_sign)

    sub.add_parser(
        "track-server",
        help="run the open/click/unsubscribe tracking server (see track-server --help)",
        add_help=False,
    )

    from mailsflux.cli_queue import add_parsers as add_queue_parsers

    add_queue_parsers(sub, _relay_url)

    p = sub.add_parser("sink", help="run a local SMTP sink that accepts and counts mail")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=2525, help="port to listen on (2525; 0 = any free)")
    p.add_argument("--save", metavar="DIR", help="keep each received message in DIR")
    p.set_defaults(func=cmd_sink)
    from mailsflux.cli_server import add_retention_parser, add_tenant_parser

    add_retention_parser(sub)
    add_tenant_parser(sub)
    from mailsflux.cli_report import add_report_parser

    add_report_parser(sub)
    from mailsflux.cli_privacy import add_privacy_parser

    add_privacy_parser(sub)
    from mailsflux.cli_letters import add_letters_parser

    add_letters_parser(sub)
    from mailsflux.benchmark.command import add_parser as add_bench_parser
    from mailsflux.cli_worker import add_parser as add_worker_parser
    from mailsflux.feedback.cli import add_parser as add_bounces
    from mailsflux.feedback.cli_suppression import add_parser as add_suppression_parser

    add_bounces(sub)
    add_suppression_parser(sub)
    add_bench_parser(sub)
    add_worker_parser(sub, _relay_url)
    from mailsflux.cli_domains import add_domains_parser

    add_domains_parser(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["track-server"]:
        # The server owns its options (uvicorn's among them): hand them over whole.
        from mailsflux.tracking import main as track_main

        return track_main(argv[1:])
    # The send or worker command alone when it is the one asked for (its
    # --help, its errors and its options are the same as in the whole parser).
    only = argv[0] if argv[:1] in (["send"], ["worker"]) else None
    args = build_parser(only).parse_args(argv)
    from mailsflux.masking import install

    # Every line printed from here on has its addresses masked, unless asked;
    # a command whose stdout is the data asked for (an export) keeps it whole.
    install(show=args.show_addresses, stdout=not getattr(args, "raw_stdout", False))
    try:
        return _guarded(lambda: int(args.func(args)))
    except BrokenPipeError:
        # The reader of stdout went away (`mailsflux ... | head`): end quietly,
        # as a tool killed by SIGPIPE does, not with a traceback. Whatever is
        # still buffered for stdout goes nowhere, so exiting cannot raise it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what a shell shows for a tool SIGPIPE ended


def run() -> int:
    """The ``mailsflux`` command as a process runs it (the console script and
    ``python -m mailsflux``): :func:`main`, then an exit that leaves the
    imported code to the OS.

    The interpreter's teardown frees every module, class and function the
    command imported, and its last collections walk them all first: about
    30 ms of CPU after a ``send`` has finished (1 us a message of a
    30,000-message job). Frozen, the collector passes them over and the
    process's memory goes back whole. Nothing is skipped that the command
    needs: it closes the files it opened itself, stdout and stderr are
    flushed and ``atexit`` handlers run as in any exit. Only for a process
    that ends with the command: ``main()`` called by a program leaves its
    collector alone.
    """
    code = main()
    gc.freeze()
    return code


def _guarded(run: Callable[[], int]) -> int:
    """``run()``'s exit code; an error is one line (exit 2), not a traceback.
    A forked worker runs its share through here as a spawned one does through main()."""
    try:
        return run()
    except MailsfluxError as exc:
        print(f"mailsflux: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mailsflux: interrupted", file=sys.stderr)
        return 130
