"""``mailsflux report JOB``: per-domain outcomes and engagement of a job."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec


def cmd_report(args: argparse.Namespace) -> int:
    from mailsflux.cli_queue import _find, _open
    from mailsflux.jobs import report

    with _open(args) as spool:
        info = _find(spool, args.job)
        store = None
        if args.tracking:
            from mailsflux.tracking.config import load_config

            store = load_config(args.tracking).open_store()
        try:
            doc = report.build(spool, info, store)
        finally:
            if store is not None:
                store.close()
    if args.html:
        report.write_html(doc, Path(args.html))
    if args.json:
        print(msgspec.json.encode(doc).decode())
    else:
        print(report.text(doc))
        if args.html:
            print(f"\nwrote {args.html}")
    return 0


def add_report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="per-domain outcomes, rates and bounce reasons of a job")
    p.add_argument("job", help="the job (its id or name, as status shows)")
    p.add_argument(
        "--spool", metavar="DIR", help="the spool directory ($MAILSFLUX_SPOOL, else the default)"
    )
    p.add_argument("--key-file", metavar="FILE", help="the spool's key file (DIR/keys)")
    p.add_argument(
        "--tracking",
        metavar="FILE",
        help="add opens, clicks, unsubscribes, complaints from this tracking config's store",
    )
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML page with charts (matplotlib)",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_report)
