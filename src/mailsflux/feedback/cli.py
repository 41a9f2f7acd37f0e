"""``mailsflux bounces parse|ingest|listen``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec

from mailsflux.errors import MailsfluxError
from mailsflux.feedback.ingest import FeedbackError, Ingestor, IngestStats, read_sources
from mailsflux.feedback.listen import BounceListener
from mailsflux.feedback.report import parse_report
from mailsflux.feedback.verp import Verp
from mailsflux.sealedlines import existing_keys, load_keys
from mailsflux.tracking.config import TrackingConfig, load_config
from mailsflux.tracking.events import EventStore


def _parse(args: argparse.Namespace) -> int:
    out = sys.stdout
    rows: list[tuple[str, str, str, str, str, str, str]] = []
    # Reading only: a key ring is used if there is one, never made.
    for name, data in read_sources(args.files, existing_keys(args.key_file)):
        report = parse_report(data)
        if args.json:
            out.write(msgspec.json.encode(report.to_json_doc(name)).decode() + "\n")
            continue
        if not report.recipients:
            rows.append((name, report.kind, "-", "-", "-", "-", "-"))
        for o in report.recipients:
            rows.append(
                (
                    name,
                    report.kind,
                    o.recipient,
                    o.status or "-",
                    str(o.code) if o.code is not None else "-",
                    o.reason,
                    "hard" if o.hard else "soft",
                )
            )
    if not args.json:
        head = ("FILE", "KIND", "RECIPIENT", "STATUS", "CODE", "REASON", "HARD")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.flush()
    return 0


def _tracking(args: argparse.Namespace) -> TrackingConfig | None:
    return load_config(args.tracking) if args.tracking else None


def _verp(args: argparse.Namespace, cfg: TrackingConfig | None) -> Verp | None:
    if not args.bounce_domain:
        return None
    if cfg is None:
        raise FeedbackError("--bounce-domain needs --tracking (its keys open VERP tokens)")
    return Verp(cfg.keys, cfg.current_key, args.bounce_domain)


def _ingestor(args: argparse.Namespace) -> tuple[Ingestor, EventStore | None]:
    cfg = _tracking(args)
    verp = _verp(args, cfg)
    store = cfg.open_store() if cfg is not None else None
    try:
        ingestor = Ingestor(
            quarantine=args.quarantine,
            events=args.events,
            store=store,
            suppression_list=args.suppression_list,
            verp=verp,
            keys=load_keys(args.key_file),
            plain_events=args.events_plain,
        )
    except MailsfluxError:
        if store is not None:
            store.close()
        raise
    return ingestor, store


def _print_stats(s: IngestStats) -> None:
    print(
        f"{s.reports} reports: {s.bounces} bounces, {s.complaints} complaints, "
        f"{s.auto_replies} auto-replies; {s.events} events, {s.suppressed} suppressed, "
        f"{s.quarantined} quarantined",
        flush=True,
    )


def _ingest(args: argparse.Namespace) -> int:
    sources = read_sources(args.paths, load_keys(args.key_file))
    ingestor, store = _ingestor(args)
    try:
        with ingestor:
            for name, data in sources:
                ingestor.ingest(data, source=name)
    finally:
        if store is not None:
            store.close()
    _print_stats(ingestor.stats)
    return 0


def _listen(args: argparse.Namespace) -> int:
    if not args.bounce_domain and not args.feedback_address:
        raise FeedbackError("give --bounce-domain (with --tracking) or --feedback-address")
    ingestor, store = _ingestor(args)

    async def serve() -> None:
        listener = BounceListener(ingestor, ingestor.verp, args.feedback_address)
        host, port = await listener.start(args.host, args.port)
        print(f"listening on {host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await listener.close()

    try:
        with ingestor, contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
    except OSError as exc:
        raise FeedbackError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    finally:
        if store is not None:
            store.close()
    _print_stats(ingestor.stats)
    return 0


def _outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quarantine",
        type=Path,
        default=Path("quarantine"),
        metavar="DIR",
        help="where reports that cannot be parsed are kept (default: ./quarantine)",
    )
    p.add_argument(
        "--events",
        type=Path,
        default=Path("bounce-events.jsonl"),
        metavar="FILE",
        help="append one JSON event per recipient here (default: ./bounce-events.jsonl);"
        " addresses sealed with the spool key file's keys",
    )
    p.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="the spool key file sealing --events and the quarantine, opening quarantined"
        " reports given back (default: the default spool's keys)",
    )
    p.add_argument(
        "--events-plain",
        action="store_true",
        help="write --events FILE in the clear: only when you need a plain export",
    )
    p.add_argument(
        "--tracking",
        metavar="CONFIG",
        help="tracking config: suppress in its store, open VERP tokens with its keys",
    )
    p.add_argument(
        "--suppression-list",
        type=Path,
        metavar="FILE",
        help="also append suppressed addresses to this list (one address a line)",
    )
    p.add_argument(
        "--bounce-domain",
        metavar="DOMAIN",
        help="the VERP return-path domain (bounces+TOKEN@DOMAIN); needs --tracking",
    )


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("bounces", help="parse and record bounces, complaints and auto-replies")
    bsub = p.add_subparsers(dest="bounces_command", required=True, metavar="ACTION")

    q = bsub.add_parser("parse", help="say what each report is, per recipient")
    q.add_argument("files", nargs="+", metavar="FILE", help="message files, maildirs or mboxes")
    q.add_argument("--json", action="store_true", help="one JSON object per message")
    q.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help="opens quarantined reports (NAME.eml.sealed); default: the default spool's keys",
    )
    q.set_defaults(func=_parse)

    q = bsub.add_parser("ingest", help="record reports as events and suppression entries")
    q.add_argument("paths", nargs="+", metavar="PATH", help="message files, maildirs or mboxes")
    _outputs(q)
    q.set_defaults(func=_ingest)

    q = bsub.add_parser("listen", help="receive reports over SMTP for the bounce domain")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    q.add_argument("--port", type=int, default=2525, help="port (2525; 0 picks a free one)")
    q.add_argument(
        "--feedback-address",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="also accept mail for this address (an ARF feedback loop); repeatable",
    )
    _outputs(q)
    q.set_defaults(func=_listen)


__all__ = ["add_parser"]
