"""What the spool holds and the small interface every spool keeps.

A spool knows, per job, each recipient's state once it has one, and the
signed bytes of every message still to be tried (deferred ones, and
messages handed over one at a time, which are stored before they are
acknowledged). A row with no state has not been settled: a resumed job
sends it (again, if it was in flight at a crash).

The interface is small on purpose (KumoMTA's ``Spool`` trait is the model):
the embedded default is :class:`~mailsflux.spool.SQLiteSpool`, one file in
a directory; a distributed one (Redis) implements the same methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import msgspec

from mailsflux.types import RenderedMessage

#: pending: stored, not yet settled (a message handed over one at a time).
#: deferred: tried, failed for now, waits for ``next_at``.
#: The others are final.
State = Literal["pending", "deferred", "delivered", "bounced", "failed", "suppressed", "skipped"]
FINAL: frozenset[str] = frozenset({"delivered", "bounced", "failed", "suppressed", "skipped"})
STATES: tuple[State, ...] = (
    "pending",
    "deferred",
    "delivered",
    "bounced",
    "failed",
    "suppressed",
    "skipped",
)


class JobInfo(msgspec.Struct, kw_only=True):
    """A job as the spool knows it."""

    id: str
    name: str
    #: Where the job came from: a job file's path, or "engine".
    source: str
    #: What the recipient data was (a hash): a resumed job must read the same.
    fingerprint: str
    #: running, interrupted, finished (every row settled or deferred).
    state: str = "running"
    created: float = 0.0
    #: When the current (or last) run began, and how many rows were settled then.
    run_started: float = 0.0
    run_base: int = 0
    updated: float = 0.0
    #: Rows in the recipient file (0: unknown).
    total: int = 0
    #: The process running it (0: none); status shows whether it lives.
    pid: int = 0


class Record(msgspec.Struct, kw_only=True, gc=False):
    """One recipient's state, as written; ``message`` only while it is still to be tried."""

    row: int
    state: State
    recipient: str = ""
    message_id: str = ""
    domain: str = ""
    attempts: int = 0
    first_at: float = 0.0
    next_at: float = 0.0
    code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""
    category: str = ""
    updated: float = 0.0
    message: RenderedMessage | None = None


class Spooled(msgspec.Struct, kw_only=True, gc=False):
    """A message read back to be tried: its record and its bytes."""

    job: str
    record: Record
    message: RenderedMessage


class Spool(Protocol):
    """Storage for jobs' states and the messages still to be tried."""

    def begin_job(self, info: JobInfo, *, restart: bool = False) -> JobInfo:
        """Start a job, or resume it: the stored job when it exists (its
        fingerprint must match), else ``info`` stored. ``restart`` forgets
        what was stored of it first."""
        ...

    def end_job(self, job: str, state: str) -> None: ...
    def job(self, job: str) -> JobInfo | None: ...
    def jobs(self) -> list[JobInfo]: ...
    def settled_rows(self, job: str) -> bytearray:
        """A bitmap of the rows that have a state: bit ``row`` set."""
        ...

    def store(self, job: str, records: Sequence[Record]) -> None:
        """Write states (and messages to keep) at once: one durable commit."""
        ...

    def due(self, now: float, *, job: str | None = None, limit: int = 1000) -> list[Spooled]:
        """Up to ``limit`` messages whose next attempt is due, oldest first."""
        ...

    def load(self, job: str, row: int) -> Record | None: ...
    def records(
        self, job: str, *, states: Iterable[str] | None = None, limit: int = 100
    ) -> list[Record]: ...
    def counts(self, job: str) -> dict[str, int]: ...
    def per_domain(self, job: str) -> dict[str, dict[str, int]]: ...
    def next_due(self, job: str | None = None) -> float | None: ...
    def make_due(self, *, job: str | None = None, rows: Iterable[int] | None = None) -> int: ...
    def release_claims(self, job: str) -> int: ...
    def append_many(self, job: str, records: Sequence[Record]) -> list[int]: ...
    def drop(self, *, job: str, rows: Iterable[int] | None = None) -> int: ...
    def close(self) -> None: ...
