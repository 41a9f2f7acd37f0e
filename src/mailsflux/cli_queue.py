"""``mailsflux queue``, ``status`` and ``serve``: the spool from the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from mailsflux.spool import JobInfo, Record, SQLiteSpool
    from mailsflux.types import JobSummary


def _open(args: argparse.Namespace) -> SQLiteSpool:
    from mailsflux.errors import SpoolError
    from mailsflux.spool import SQLiteSpool, default_spool_dir

    if getattr(args, "redis", None):
        from mailsflux.cli_worker import open_redis_spool

        return open_redis_spool(args)  # type: ignore[return-value]

    where = Path(args.spool) if args.spool else default_spool_dir()
    if not (where / "spool.db").exists():
        raise SpoolError(
            "no spool here (nothing has been sent with it yet; --spool DIR names another)",
            file=str(where),
        )
    return SQLiteSpool(where, key_file=args.key_file)


def _when(t: float | None) -> str:
    if not t:
        return "-"
    left = t - time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    if left <= 0:
        return f"{stamp} (due)"
    return f"{stamp} (in {_span(left)})"


def _span(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86_400:.1f} days"


def _find(spool: SQLiteSpool, name: str) -> JobInfo:
    from mailsflux.errors import SpoolError

    found = [i for i in spool.jobs() if name in (i.id, i.name)]
    if not found:
        raise SpoolError(f"no job {name!r} in the spool (`mailsflux queue list` lists them)")
    if len(found) > 1:
        ids = ", ".join(i.id for i in found)
        raise SpoolError(f"{len(found)} jobs are named {name!r}: name one by its id ({ids})")
    return found[0]


def _record_doc(r: Record) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(r)
    doc.pop("message", None)
    return doc


def cmd_queue_list(args: argparse.Namespace) -> int:
    with _open(args) as spool:
        rows = []
        for info in spool.jobs():
            counts = spool.counts(info.id)
            waiting = counts.get("deferred", 0) + counts.get("pending", 0)
            if waiting or args.all:
                rows.append((info, waiting, spool.next_due(info.id)))
        if args.json:
            docs = [
                {"id": i.id, "name": i.name, "waiting": n, "next_attempt": nxt}
                for i, n, nxt in rows
            ]
            print(msgspec.json.encode(docs).decode())
            return 0
        if not rows:
            print("the queue is empty: no deferred messages")
            return 0
        print(f"{'job id':<22} {'name':<24} {'waiting':>8}  next attempt")
        for info, n, nxt in rows:
            print(f"{info.id:<22} {info.name[:24]:<24} {n:>8}  {_when(nxt)}")
    return 0


def cmd_queue_show(args: argparse.Namespace) -> int:
    from mailsflux.errors import SpoolError

    with _open(args) as spool:
        info = _find(spool, args.job)
        if args.row is not None:
            rec = spool.load(info.id, args.row)
            if rec is None:
                raise SpoolError(f"job {info.name!r} has no state for row {args.row}")
            doc = _record_doc(rec)
            if args.json:
                print(msgspec.json.encode(doc).decode())
            else:
                for k, v in doc.items():
                    if k in ("first_at", "next_at", "updated"):
                        v = _when(v) if k == "next_at" else time.ctime(v) if v else "-"
                    print(f"{k:<16} {v}")
            return 0
        recs = spool.records(info.id, states=("deferred", "pending"), limit=args.limit)
        if args.json:
            for r in recs:
                print(msgspec.json.encode(_record_doc(r)).decode())
            return 0
        print(f"job {info.name} ({info.id}) from {info.source}")
        print(f"{'row':>8}  {'recipient':<36} {'tries':>5}  {'next attempt':<34} last reply")
        for r in recs:
            reply = f"{r.code or ''} {r.reply}".strip()[:60]
            when = _when(r.next_at)
            print(f"{r.row:>8}  {r.recipient[:36]:<36} {r.attempts:>5}  {when:<34} {reply}")
    return 0


def cmd_queue_retry(args: argparse.Namespace) -> int:
    from mailsflux.errors import ConfigError

    with _open(args) as spool:
        if args.all:
            n = spool.make_due()
        elif args.job:
            info = _find(spool, args.job)
            n = spool.make_due(job=info.id, rows=args.rows or None)
        else:
            raise ConfigError("queue retry: name a JOB (and rows), or --all")
    print(f"{n} deferred messages are due now (`mailsflux queue run` sends them)")
    return 0


def cmd_queue_drop(args: argparse.Namespace) -> int:
    with _open(args) as spool:
        info = _find(spool, args.job)
        n = spool.drop(job=info.id, rows=args.rows or None)
    print(f"dropped {n} messages of job {info.name}: recorded failed, their bytes deleted")
    return 0


def cmd_queue_rekey(args: argparse.Namespace) -> int:
    with _open(args) as spool:
        kid = spool.keys.rotate()
        if getattr(args, "redis", None):
            from mailsflux.jobs.redis_privacy import reseal

            done = reseal(spool)  # type: ignore[arg-type]  # _open gave a RedisSpool
            n = sum(v for k, v in done.items() if k != "batches_held")
        else:
            n = spool.reseal()
    print(f"new spool key {kid}; {n} records sealed again under it (older keys may be removed)")
    return 0


def _print_pass(info: JobInfo, s: JobSummary) -> None:
    print(
        f"{info.name} ({info.id}): {s.total} tried: {s.sent} delivered, {s.deferred} deferred,"
        f" {s.failed} failed, {s.skipped} skipped",
        flush=True,
    )


def cmd_queue_run(args: argparse.Namespace) -> int:
    from mailsflux.cli import _env_relay, _print_problem, _run
    from mailsflux.delivery.relay import Relay
    from mailsflux.jobs.queue import run_queue

    relay_url = args.relay or _env_relay()
    relay = Relay.parse(relay_url) if relay_url else None
    with _open(args) as spool:
        done = _run(
            run_queue(
                spool, job=args.job, relay=relay, on_problem=_print_problem, on_job=_print_pass
            )
        )
        waiting = spool.next_due()
    if not done:
        print("nothing was due")
    if waiting is not None:
        print(f"next attempt: {_when(waiting)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mailsflux.cli import _env_relay, _print_problem, _run, _Stop
    from mailsflux.cli_server import server_config
    from mailsflux.delivery.relay import Relay
    from mailsflux.jobs.queue import serve_queue
    from mailsflux.server import Server
    from mailsflux.spool import SQLiteSpool, default_spool_dir

    relay_url = args.relay or _env_relay()
    relay = Relay.parse(relay_url) if relay_url else None
    config = server_config(args)
    stop = _Stop()
    where = Path(args.spool) if args.spool else default_spool_dir()
    with SQLiteSpool(where, key_file=args.key_file) as spool:

        async def go() -> None:
            stop.install()
            try:
                print(f"mailsflux serve: running the queue in {where}", file=sys.stderr, flush=True)
                queue = serve_queue(
                    spool,
                    relay=relay,
                    on_problem=_print_problem,
                    on_job=_print_pass,
                    stop=stop.event,
                    hard_stop=stop.hard,
                    idle=args.interval,
                )
                if config is None:
                    await queue
                    return
                server = Server(config, job_spool=where)
                await asyncio.gather(queue, server.run(stop.event, ready=_print_ready))
            finally:
                stop.uninstall()

        _run(go())
    print("mailsflux serve: stopped", file=sys.stderr)
    return stop.exit_code if stop.signum else 0


def _print_ready(server: Any) -> None:
    if server.http_address is not None:
        host, port = server.http_address
        print(f"mailsflux serve: HTTP API on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    for kind, port in server.submission_ports.items():
        print(f"mailsflux serve: SMTP submission ({kind}) on port {port}", file=sys.stderr,
              flush=True)  # fmt: skip
    if server.bounces_address is not None:
        host, port = server.bounces_address
        print(f"mailsflux serve: bounces on smtp://{host}:{port}", file=sys.stderr, flush=True)
    gw = server.gateway
    where = gw.data_dir if gw is not None else "?"
    print(f"mailsflux serve: data in {where}", file=sys.stderr, flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args) as spool:
        infos = [_find(spool, args.job)] if args.job else spool.jobs()
        docs = [_status_doc(spool, i) for i in infos]
    if args.json:
        print(msgspec.json.encode(docs if not args.job else docs[0]).decode())
        return 0
    if not docs:
        print("no jobs in the spool")
    for d in docs:
        _print_status(d, detail=bool(args.job))
    return 0


def _status_doc(spool: SQLiteSpool, info: JobInfo) -> dict[str, Any]:
    from mailsflux.spool import pid_alive

    counts = spool.counts(info.id)
    settled = sum(n for s, n in counts.items() if s != "pending")
    # A job in Redis names no process: its workers may be on any host.
    running = info.state == "running" and (
        not info.pid or info.pid == os.getpid() or pid_alive(info.pid)
    )
    state = info.state if info.state != "running" or running else "interrupted"
    end = time.time() if running else info.updated
    elapsed = max(end - info.run_started, 1e-9)
    rate = (settled - info.run_base) / elapsed if info.run_started else 0.0
    left = max(info.total - settled, 0) if info.total else None
    eta = left / rate if running and left is not None and rate > 0 else None
    doc: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "source": info.source,
        "state": state,
        "counts": counts,
        "rows": info.total or None,
        "rate": rate,
        "eta_seconds": eta,
        "next_attempt": spool.next_due(info.id),
        "per_domain": spool.per_domain(info.id),
    }
    quarantined = getattr(spool, "quarantined", None)  # the spool in Redis keeps one
    if quarantined is not None:
        doc["quarantine"] = [
            {"what": what, "since": when, "why": why, "first_row": first, "rows": n}
            for what, (when, why, first, n) in sorted(quarantined(info.id).items())
        ]
    return doc


def _print_status(d: dict[str, Any], *, detail: bool) -> None:
    c = d["counts"]
    parts = ", ".join(f"{n} {s}" for s, n in sorted(c.items(), key=lambda kv: -kv[1]))
    print(f"{d['name']} ({d['id']}): {d['state']}; {parts or 'nothing settled yet'}")
    line = f"  rate {d['rate']:.1f} msg/s"
    if d["rows"]:
        line += f"; {sum(c.values())} of {d['rows']} rows settled"
    if d["eta_seconds"] is not None:
        line += f"; about {_span(d['eta_seconds'])} left"
    if d["next_attempt"]:
        line += f"; next retry {_when(d['next_attempt'])}"
    print(line)
    for q in d.get("quarantine", ()):
        rows = f"{q['rows']} rows " if q.get("rows") else ""
        print(f"  set aside: {q['what']} ({rows}from row {q['first_row']}): {q['why']}")
    if detail:
        doms = sorted(d["per_domain"].items(), key=lambda kv: -sum(kv[1].values()))
        width = max((len(k) for k, _ in doms), default=6)
        for dom, per in doms[:30]:
            cells = ", ".join(f"{n} {s}" for s, n in sorted(per.items()))
            print(f"    {dom:<{width}}  {cells}")
        if len(doms) > 30:
            print(f"    ... and {len(doms) - 30} more domains")


def _spool_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--spool", metavar="DIR", help="the spool directory ($MAILSFLUX_SPOOL, else the default)"
    )
    p.add_argument("--key-file", metavar="FILE", help="the spool's key file (DIR/keys)")


def _rows(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a row number, got {text!r}")
    return int(text)


def add_parsers(sub: Any, relay_url: Any) -> None:
    """``queue``, ``status`` and ``serve`` on the main parser's subcommands."""
    p = sub.add_parser(
        "queue", help="the deferred queue in the spool: run, list, show, retry, drop"
    )
    q = p.add_subparsers(dest="queue_command", required=True, metavar="ACTION")

    a = q.add_parser("run", help="try every due deferred message once, then exit (cron, timers)")
    _spool_options(a)
    a.add_argument("job", nargs="?", help="only this job (id or name)")
    a.add_argument("--relay", type=relay_url, metavar="URL", help="override the jobs' relay")
    a.set_defaults(func=cmd_queue_run)

    a = q.add_parser("list", help="jobs with deferred messages, and when each is next tried")
    _spool_options(a)
    a.add_argument("--all", action="store_true", help="also jobs with nothing waiting")
    a.add_argument("--json", action="store_true", help="as JSON")
    a.set_defaults(func=cmd_queue_list)

    a = q.add_parser("show", help="a job's deferred messages, or one row's record")
    _spool_options(a)
    a.add_argument("job", help="job id or name")
    a.add_argument("row", nargs="?", type=_rows, help="one row (recipient file line)")
    a.add_argument("--limit", type=int, default=100, help="messages to list (100)")
    a.add_argument("--json", action="store_true", help="as JSON lines")
    a.set_defaults(func=cmd_queue_show)

    a = q.add_parser("retry", help="make deferred messages due now")
    _spool_options(a)
    a.add_argument("job", nargs="?", help="job id or name")
    a.add_argument("rows", nargs="*", type=_rows, help="only these rows")
    a.add_argument("--all", action="store_true", help="every deferred message of every job")
    a.set_defaults(func=cmd_queue_retry)

    a = q.add_parser("drop", help="give up on deferred messages (recorded failed, bytes deleted)")
    _spool_options(a)
    a.add_argument("job", help="job id or name")
    a.add_argument("rows", nargs="*", type=_rows, help="only these rows (default: all waiting)")
    a.set_defaults(func=cmd_queue_drop)

    a = q.add_parser("rekey", help="add a new spool key and seal every record under it")
    _spool_options(a)
    a.set_defaults(func=cmd_queue_rekey)

    p = sub.add_parser("status", help="jobs in the spool: counts per state, rate, ETA, domains")
    _spool_options(p)
    from mailsflux.cli_worker import redis_options

    redis_options(p)
    p.add_argument("job", nargs="?", help="one job (id or name), with per-domain counts")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "serve", help="run the queue continuously (retries until delivered or expired)"
    )
    _spool_options(p)
    p.add_argument("--relay", type=relay_url, metavar="URL", help="override the jobs' relay")
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="S",
        help="longest sleep between passes (60)",
    )
    from mailsflux.cli_server import add_serve_options

    add_serve_options(p)
    p.set_defaults(func=cmd_serve)
