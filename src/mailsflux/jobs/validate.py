"""``mailsflux validate``: every problem of a job, found without sending or signing."""

from __future__ import annotations

import os
from pathlib import Path

from mailsflux.errors import MailsfluxError
from mailsflux.jobs.composer import Composer
from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.prepared import job_signer
from mailsflux.jobs.problems import CappedProblems
from mailsflux.jobs.recipients import RecipientFile
from mailsflux.jobs.rows import check_all
from mailsflux.tracking.config import load_config
from mailsflux.tracking.tracker import Tracker
from mailsflux.types import Problem


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
