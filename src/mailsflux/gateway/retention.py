"""Retention: personal data is kept only as long as the platform promises.

- A settled spool record's address and reply: ``recipient_days`` (90) after
  its last change, then blanked. A job file's row keeps its number and state
  (a resumed job must still pass it over); an engine's one-off records have
  nothing to resume and are deleted.
- An event: ``event_days`` (365), then deleted; its address and reply go
  after ``recipient_days``.
- An API job's record: ``recipient_days`` after it ended (its rows went when
  it ended).
- An idempotency answer: ``idempotency_hours`` (24).
- An events file the project writes (JSON lines: the bounce listener's,
  a ``send --events`` file given to ``retention run --events``, the
  privacy audit): like an event, line by line, sealed or not.
- A report in the bounce listener's quarantine: ``recipient_days``.

The sweeps take the clock as an argument (``now``), so tests move time
instead of waiting. ``mailsflux retention run`` sweeps once; ``serve``
sweeps every ``interval_hours``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from mailsflux import sealedlines
from mailsflux.gateway.log import TenantLog
from mailsflux.spool import SQLiteSpool

DAY = 86400.0
AUDIT_FILE = "privacy-audit.jsonl"


class RetentionSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[retention]``: how long personal data is kept (the defaults are the promises)."""

    recipient_days: float = 90.0
    #: A cancelled tenant's data (spool, log, jobs, keys) is deleted this
    #: long after the cancellation (``mailsflux tenants cancel``).
    account_days: float = 90.0
    event_days: float = 365.0
    idempotency_hours: float = 24.0
    #: A letter's postal address is deleted this long after its confirmed delivery.
    letter_days: float = 30.0
    #: A letter's postal address is deleted this long after it was recorded,
    #: whatever its state (pending, stuck, never reported on).
    letter_max_days: float = 180.0
    #: How often ``serve`` sweeps.
    interval_hours: float = 1.0


def sweep_spool(directory: Path, spec: RetentionSpec, now: float) -> dict[str, int]:
    """One spool (a job-file spool, or a tenant's)."""
    if not (directory / "spool.db").exists():
        return {}
    with SQLiteSpool(directory) as spool:
        anonymised, deleted = spool.sweep(now - spec.recipient_days * DAY)
    return {"spool_anonymised": anonymised, "spool_deleted": deleted}


def sweep_events_files(paths: list[Path], spec: RetentionSpec, now: float) -> dict[str, int]:
    """Events files (JSON lines): old lines deleted, older personal fields dropped."""
    out: dict[str, int] = {}
    for path in paths:
        if path.exists():
            add_counts(
                out,
                sealedlines.sweep(
                    path,
                    events_before=now - spec.event_days * DAY,
                    recipients_before=now - spec.recipient_days * DAY,
                ),
            )
    return out


def sweep_quarantine(directory: Path, spec: RetentionSpec, now: float) -> dict[str, int]:
    """Reports kept because they could not be parsed name people: deleted
    ``recipient_days`` after they came (their file's time)."""
    n = 0
    if directory.is_dir():
        for f in directory.iterdir():
            if f.is_file() and f.stat().st_mtime < now - spec.recipient_days * DAY:
                f.unlink(missing_ok=True)
                n += 1
    return {"quarantine_deleted": n} if n else {}


def sweep_tenant(
    directory: Path, log: TenantLog, spec: RetentionSpec, now: float
) -> dict[str, int]:
    """A tenant's spool, log, API job folders and privacy audit."""
    out = sweep_spool(directory / "spool", spec, now)
    add_counts(out, sweep_events_files([directory / AUDIT_FILE], spec, now))
    out |= log.sweep(
        events_before=now - spec.event_days * DAY,
        recipients_before=now - spec.recipient_days * DAY,
        answers_before=now - spec.idempotency_hours * 3600,
    )
    jobs = directory / "jobs"
    if jobs.is_dir():
        for folder in jobs.iterdir():
            # Its record is gone (swept): so goes the folder. A job is recorded
            # before its folder is made, so one being written is never taken.
            if log.job(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)
    return out


def tenant_due(cancelled: dict[str, float], name: str, spec: RetentionSpec, now: float) -> bool:
    """Whether ``name`` was cancelled ``account_days`` or more before ``now``."""
    at = cancelled.get(name)
    return at is not None and at <= now - spec.account_days * DAY


class Sweeps:
    """One retention run's counts, and the stores it could not sweep: each
    store (a spool, an events file, the quarantine, a tenant) is swept on
    its own, so one that fails (a locked database, a full disk) leaves the
    others' personal data on time."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.failed: list[str] = []

    def run(self, what: str, sweep: Callable[[], dict[str, int]]) -> None:
        try:
            add_counts(self.done, sweep())
        except Exception as exc:  # this store: the others still go
            self.failed.append(f"{what}: {exc}")


def add_counts(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v
    return total


__all__ = [
    "DAY",
    "RetentionSpec",
    "Sweeps",
    "add_counts",
    "sweep_events_files",
    "sweep_quarantine",
    "sweep_spool",
    "sweep_tenant",
    "tenant_due",
]
