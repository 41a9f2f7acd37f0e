"""``mailsflux suppression add|remove|list|import|export|check``.

Every action works on the event store of the tracking config given with
``--tracking`` (as ``bounces ingest --tracking`` does): the list every send
checks before rendering a row and before every retry.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from mailsflux.feedback.suppression import (
    REASONS,
    SuppressionError,
    SuppressionList,
    check_address,
    entry_doc,
    format_date,
)
from mailsflux.tracking.config import load_config
from mailsflux.tracking.events import SuppressionRecord


@contextlib.contextmanager
def _opened(args: argparse.Namespace) -> Iterator[SuppressionList]:
    store = load_config(args.tracking).open_store()
    try:
        yield SuppressionList(store)
    finally:
        store.close()


def _why(e: SuppressionRecord) -> str:
    scope = f" from list {e.list}" if e.list else ""
    how = f", job {e.job}" if e.job else ""
    return f"{e.reason}{scope}, {format_date(e.at)}{how}"


def _checked(addresses: list[str]) -> list[str]:
    """Every address in its comparison form; any bad one stops before a change."""
    bad: list[str] = []
    keys: list[str] = []
    for a in addresses:
        try:
            keys.append(check_address(a))
        except SuppressionError as exc:
            bad.append(exc.message)
    if bad:
        raise SuppressionError("; ".join(bad))
    return keys


def _add(args: argparse.Namespace) -> int:
    keys = _checked(args.addresses)
    with _opened(args) as entries:
        for key in keys:
            if entries.add(key, args.reason, list_name=args.list):
                print(f"{key}: suppressed ({args.reason}" + _scope(args) + ")")
            else:
                held = entries.check(key, args.list)[-1]
                print(f"{key}: already suppressed ({_why(held)})")
    return 0


def _scope(args: argparse.Namespace) -> str:
    return f" from list {args.list}" if args.list else ""


def _remove(args: argparse.Namespace) -> int:
    keys = _checked(args.addresses)
    with _opened(args) as entries:
        for key in keys:
            if entries.remove(key, list_name=args.list):
                print(f"{key}: removed{_scope(args)}; it will be mailed again")
            else:
                print(f"{key}: was not suppressed{_scope(args)}")
            left = [] if args.list else entries.lists_left(key)
            if left:
                print(
                    f"{key}: still opted out of list(s) {', '.join(left)}"
                    " (remove those with --list NAME)"
                )
    return 0


def _check(args: argparse.Namespace) -> int:
    keys = _checked(args.addresses)
    hit = False
    with _opened(args) as entries:
        for key in keys:
            found = entries.check(key, args.list)
            if found:
                hit = True
                for e in found:
                    print(f"{key}: suppressed ({_why(e)})")
                continue
            left = [] if args.list else entries.lists_left(key)
            note = f" (opted out of list(s) {', '.join(left)})" if left else ""
            print(f"{key}: not suppressed{note}")
    return 1 if hit else 0


def _list(args: argparse.Namespace) -> int:
    out = sys.stdout
    with _opened(args) as entries:
        for e in entries.entries(reason=args.reason, list_name=args.list):
            if args.json:
                out.write(msgspec.json.encode(entry_doc(e)).decode() + "\n")
            else:
                scope = f"  list={e.list}" if e.list else ""
                out.write(
                    f"{format_date(e.at)}  {e.reason:<11}  {e.address or '(erased)'}{scope}\n"
                )
    out.flush()
    return 0


def _lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    try:
        fh: IO[bytes] = open(path, "rb")  # closed below, once streamed
    except OSError as exc:
        raise SuppressionError(f"cannot read: {exc.strerror or exc}", file=path) from None
    with fh:
        try:
            yield from fh
        except OSError as exc:
            raise SuppressionError(f"cannot read: {exc.strerror or exc}", file=path) from None


def _import(args: argparse.Namespace) -> int:
    source = "stdin" if args.file == "-" else args.file
    lines = _lines(args.file)
    # Opened now: a missing file is one error line before the store is touched.
    first = next(lines, None)

    def every() -> Iterator[bytes]:
        if first is not None:
            yield first
            yield from lines

    def problem(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with _opened(args) as entries:
        stats = entries.import_lines(
            every(), source=source, reason=args.reason, list_name=args.list, on_problem=problem
        )
    print(
        f"{stats.entries} entries: {stats.added} added, {stats.already} already suppressed,"
        f" {stats.bad} bad lines (reported above)"
        if stats.bad
        else f"{stats.entries} entries: {stats.added} added, {stats.already} already suppressed"
    )
    return 1 if stats.bad else 0


def _export(args: argparse.Namespace) -> int:
    with _opened(args) as entries:
        if args.out is None:
            stats = entries.export_csv(sys.stdout, reason=args.reason, list_name=args.list)
            sys.stdout.flush()
        else:
            stats = entries.export_file(args.out, reason=args.reason, list_name=args.list)
    if stats.erased:
        print(
            f"mailsflux: {stats.erased} entries of erased people hold no address"
            " (only a keyed hash, still honoured by sends): not exported",
            file=sys.stderr,
        )
    if args.out is not None:
        print(f"wrote {stats.written} entries to {args.out}", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking",
        required=True,
        metavar="CONFIG",
        help="tracking config whose event store holds the list (the one sends check)",
    )


def _list_option(p: argparse.ArgumentParser, what: str, default: str | None = "") -> None:
    p.add_argument(
        "--list",
        default=default,
        metavar="NAME",
        help=f"{what} one list (a job name) only, not every list",
    )


def _reason_option(p: argparse.ArgumentParser, help_text: str, default: str | None) -> None:
    p.add_argument("--reason", choices=REASONS, default=default, help=help_text)


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("suppression", help="the suppression list every send checks")
    ssub = p.add_subparsers(dest="suppression_command", required=True, metavar="ACTION")

    q = ssub.add_parser("add", help="never mail these addresses again")
    q.add_argument("addresses", nargs="+", metavar="ADDRESS", help="addresses to suppress")
    _common(q)
    _reason_option(q, "why (manual)", "manual")
    _list_option(q, "suppress for")
    q.set_defaults(func=_add)

    q = ssub.add_parser("remove", help="mail these addresses again")
    q.add_argument("addresses", nargs="+", metavar="ADDRESS", help="addresses to remove")
    _common(q)
    _list_option(q, "remove the opt-out of")
    q.set_defaults(func=_remove)

    q = ssub.add_parser("check", help="exit 1 if any address is suppressed, saying why")
    q.add_argument("addresses", nargs="+", metavar="ADDRESS", help="addresses to look up")
    _common(q)
    _list_option(q, "also count opt-outs of")
    q.set_defaults(func=_check)

    q = ssub.add_parser("list", help="every entry: date, reason, address, list")
    _common(q)
    _reason_option(q, "only entries with this reason", None)
    _list_option(q, "only entries of", None)
    q.add_argument("--json", action="store_true", help="one JSON object per entry")
    q.set_defaults(func=_list)

    q = ssub.add_parser("import", help="add a file's addresses (or address,reason CSV)")
    q.add_argument("file", metavar="FILE", help="one address a line, or CSV; - reads stdin")
    _common(q)
    _reason_option(q, "the reason of lines that give none (manual)", "manual")
    _list_option(q, "lines that name no list suppress for")
    q.set_defaults(func=_import)

    q = ssub.add_parser("export", help="write the list as CSV: address,reason,date,list")
    _common(q)
    q.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write FILE (mode 0600, replaced whole) instead of stdout",
    )
    _reason_option(q, "only entries with this reason", None)
    _list_option(q, "only entries of", None)
    q.set_defaults(func=_export, raw_stdout=True)  # the export is the list, whole


__all__ = ["add_parser"]
