"""``mailsflux worker --redis URL``, and ``send JOB --redis URL``: one send, many processes."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from mailsflux.spool import JobInfo
    from mailsflux.spool.redis_spool import RedisSpool
    from mailsflux.types import JobSummary

#: Every key starts with this unless --prefix says otherwise.
PREFIX = "mf"


def open_redis_spool(args: argparse.Namespace) -> RedisSpool:
    """The spool in Redis named by ``--redis``, ``--prefix`` and ``--key-file``."""
    from mailsflux.spool.redis_spool import RedisSpool

    return RedisSpool(args.redis, prefix=args.prefix or PREFIX, key_file=args.key_file)


def redis_stores(args: argparse.Namespace, config: Any = None) -> list[tuple[str, str, str | None]]:
    """The spools in Redis a store-wide command visits: ``--redis`` (with
    ``--prefix``, ``--key-file``) and the server config's ``[redis]``, as
    (url, prefix, key file)."""
    out: list[tuple[str, str, str | None]] = []
    if getattr(args, "redis", None):
        out.append((args.redis, args.prefix or PREFIX, args.key_file))
    r = getattr(config, "redis", None)
    if r is not None:
        key_file = str(config.resolve(r.key_file)) if r.key_file else None
        if (r.url, r.prefix) not in [o[:2] for o in out]:
            out.append((r.url, r.prefix, key_file))
    return out


def _note(text: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"mailsflux worker {stamp}: {text}", file=sys.stderr, flush=True)


def _done(info: JobInfo, s: JobSummary) -> None:
    _note(
        f"{info.name} ({info.id}): this worker sent {s.sent}, deferred {s.deferred},"
        f" failed {s.failed}, skipped {s.skipped}"
    )


def cmd_worker(args: argparse.Namespace) -> int:
    from mailsflux.cli import _env_relay, _open_events, _print_problem, _run, _Stop
    from mailsflux.delivery.relay import Relay
    from mailsflux.jobs.worker import run_worker

    relay_url = args.relay or _env_relay()
    relay = Relay.parse(relay_url) if relay_url else None
    stop = _Stop()
    with open_redis_spool(args) as spool:
        # A host whose key file is not the others' says so now, not per batch.
        spool.check_keys()
        events = None
        if args.events:
            events = _open_events(args.events, None if args.events_plain else spool.keys)

        async def go() -> None:
            stop.install()
            try:
                await run_worker(
                    spool,
                    lease=args.lease,
                    relay=relay,
                    stop=stop.event,
                    hard_stop=stop.hard,
                    on_problem=_print_problem,
                    note=_note,
                    on_done=_done,
                    once=args.until_idle,
                    events=events,
                )
            finally:
                stop.uninstall()

        try:
            _run(go())
        finally:
            if events is not None:
                events.close()
    _note("stopped")
    return stop.exit_code if stop.signum else 0


def cmd_send_redis(args: argparse.Namespace) -> int:
    """Enqueue the job's rows in Redis and follow it until every row has a state."""
    from mailsflux.cli import (
        _announce_key,
        _print_problem,
        _print_problem_json,
        _run,
        _Stop,
        check_job,
    )
    from mailsflux.errors import ConfigError
    from mailsflux.jobs.jobfile import load_job
    from mailsflux.jobs.prepared import make_signer
    from mailsflux.jobs.progress import Progress
    from mailsflux.jobs.worker import end_state, enqueue, follow

    if args.workers or args.shard or args.local_sink or args.no_spool or args.relay:
        raise ConfigError(
            "with --redis the workers send (`mailsflux worker --redis URL`): --workers,"
            " --shard, --local-sink, --relay and --no-spool do not apply"
        )
    stop = _Stop()
    job = load_job(args.job)
    new_key = job.spec.dkim.generate and not job.key_path.exists()
    make_signer(job)  # the key the workers sign with exists before they look for it
    if new_key:
        _announce_key(job.key_path, job.spec.dkim.domain)
    # Checked here, before any row is in Redis: workers take the job as it is.
    check_job(job, None, json=args.json)
    report = _print_problem_json if args.json else _print_problem
    with open_redis_spool(args) as spool:
        info, total = enqueue(spool, job, on_problem=report, restart=args.restart)
        if not args.json:
            print(
                f"mailsflux: job {info.name!r} ({info.id}) is in Redis ({total} rows);"
                " `mailsflux worker --redis URL` processes send it",
                file=sys.stderr,
            )
        progress = None if args.quiet or args.json else Progress(total)

        def advance(settled: int) -> None:
            if progress is not None and settled > progress.done:
                progress.advance(settled - progress.done)

        async def go() -> JobSummary:
            stop.install()
            try:
                return await follow(spool, info, stop=stop.event, on_progress=advance)
            finally:
                stop.uninstall()

        summary = _run(go())
        if not summary.interrupted:
            spool.end_job(info.id, end_state({"quarantined": summary.quarantined}))
        if progress is not None:
            progress.finish(complete=not summary.interrupted)
        if summary.quarantined:
            _name_quarantined(spool, info.id, summary.quarantined)
    return _report(args, summary, total)


def _name_quarantined(spool: Any, jid: str, rows: int) -> None:
    """The batches set aside unsent, one line each (no address: rows and why)."""
    print(f"mailsflux: {rows} rows of job {jid} were set aside unsent:", file=sys.stderr)
    for what, (_, why, first, n) in sorted(spool.quarantined(jid).items()):
        if what.startswith("batch:"):
            print(f"  {what}: {n} rows from row {first}: {why}", file=sys.stderr)


def _report(args: argparse.Namespace, summary: JobSummary, total: int) -> int:
    from mailsflux.cli import _print_summary

    if args.json:
        doc: dict[str, Any] = msgspec.to_builtins(summary)
        doc["rate"] = summary.rate
        print(msgspec.json.encode(doc).decode(), flush=True)
    else:
        _print_summary(summary, None, total)
    if summary.interrupted:
        print(
            "mailsflux: stopped following; the workers go on with the job"
            " (`mailsflux status --redis URL` shows it)",
            file=sys.stderr,
        )
        return 1
    return 1 if summary.failed or summary.deferred or summary.quarantined else 0


def redis_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--redis``, ``--prefix`` (and ``--key-file`` where the parser lacks it)."""
    p.add_argument(
        "--redis",
        required=required,
        metavar="URL",
        help=(
            "the spool in Redis: redis://[:password@]host:port/db (rediss:// for TLS);"
            " redis+cluster://host:port for a Cluster,"
            " redis+sentinel://host:port[,host:port]/MASTER[/db] through Sentinel"
        ),
    )
    p.add_argument(
        "--prefix", default=PREFIX, metavar="P", help=f"with --redis: key prefix ({PREFIX})"
    )
    if not any("--key-file" in a.option_strings for a in p._actions):
        p.add_argument(
            "--key-file",
            metavar="FILE",
            help="the spool key file, the same on every host (default: keys in the spool dir)",
        )


def add_parser(sub: Any, relay_url: Any) -> None:
    """``worker`` on the main parser's subcommands (``relay_url`` checks --relay)."""
    p = sub.add_parser(
        "worker", help="take batches of jobs from Redis and send them (run one per host or core)"
    )
    redis_options(p, required=True)
    p.add_argument(
        "--lease",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds after which a silent worker's batches are taken over (30)",
    )
    p.add_argument(
        "--relay",
        type=relay_url,
        metavar="URL",
        help="override the jobs' relay (or MAILSFLUX_RELAY)",
    )
    p.add_argument(
        "--events",
        metavar="FILE",
        help="append this worker's delivery events to FILE (JSON lines; recipients and replies"
        " sealed with the spool's keys)",
    )
    p.add_argument(
        "--events-plain",
        action="store_true",
        help="write --events FILE in the clear: only when you need a plain export",
    )
    p.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once no job has batches left or deferred messages due",
    )
    p.set_defaults(func=cmd_worker)
