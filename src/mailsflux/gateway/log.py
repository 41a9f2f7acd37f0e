"""A tenant's log: its events, its API jobs and its idempotency answers.

One SQLite file per tenant, in the tenant's region: nothing of one tenant
sits in another's file, so no query can cross tenants. Recipients are
sealed (AES-256-GCM, the tenant spool's keys) bound to their event's
message. Events carry an increasing id: the cursor clients sync from.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import msgspec

from mailsflux.events import Event, EventDetails, EventType, event_id
from mailsflux.spool import SpoolKeys, SQLiteSpool
from mailsflux.types import DeliveryResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    message_id TEXT NOT NULL,
    job TEXT,
    recipient BLOB,
    details BLOB
);
CREATE INDEX IF NOT EXISTS events_message ON events(message_id);
CREATE INDEX IF NOT EXISTS events_job ON events(job, type);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    total INTEGER NOT NULL,
    next_row INTEGER NOT NULL,
    template BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_cursors (
    endpoint TEXT PRIMARY KEY,
    after INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    status INTEGER,
    body BLOB,
    created REAL NOT NULL
);
"""

#: A result's status as an event type.
EVENT_TYPES = {
    "delivered": "delivered",
    "deferred": "deferred",
    "bounced": "bounced",
    "failed": "failed",
    "suppressed": "suppressed",
    "skipped": "suppressed",
}
FINAL = ("delivered", "bounced", "failed", "suppressed")


class _Details(msgspec.Struct, array_like=True, omit_defaults=True):
    """:class:`EventDetails` as stored: by position, so the stored form stays
    put whatever order the schema shows; new fields go at the end (rows
    written before still read)."""

    code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""
    category: str = ""
    hard: bool | None = None
    url: str = ""
    user_agent: str = ""
    feedback_type: str = ""
    scope: str = ""
    reported_recipient: str = ""
    source: str = ""
    carrier: str = ""
    tracking_number: str = ""


def _stored(d: EventDetails) -> _Details:
    return _Details(**msgspec.structs.asdict(d))


def _shown(d: _Details) -> EventDetails:
    return EventDetails(**msgspec.structs.asdict(d))


def _without_personal(d: EventDetails) -> EventDetails:
    """Details with what can name or track a person removed (a reply often
    quotes the address; a URL or user agent can identify)."""
    return msgspec.structs.replace(d, reply="", url="", user_agent="")


class JobRow(msgspec.Struct, kw_only=True):
    id: str
    name: str
    state: str
    created: float
    updated: float
    total: int
    next_row: int
    template: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Details)


class TenantLog:
    """Events, API jobs and idempotency answers of one tenant."""

    @classmethod
    def of(cls, directory: Path, tenant: str = "", *, durable: bool = False) -> TenantLog:
        """The log of the tenant whose folder is ``directory``: sealed with its
        spool's keys (one key file per tenant)."""
        with SQLiteSpool(directory / "spool", durable=durable) as spool:
            keys = spool.keys
        return cls(directory / "log.db", keys, tenant)

    def __init__(self, path: Path, keys: SpoolKeys, tenant: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not path.exists()
        self._db = sqlite3.connect(
            path, timeout=30.0, check_same_thread=False, isolation_level=None
        )
        if new:
            path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._keys = keys
        self.tenant = tenant
        self._watchers: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []

    @property
    def keys(self) -> SpoolKeys:
        """The keys its values are sealed with (the tenant spool's)."""
        return self._keys

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; on any failure rolled back, so the next works."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _seal_details(self, d: _Details, message_id: str) -> bytes:
        # Replies often quote the address: sealed like the recipient.
        return self._keys.seal(_enc.encode(d), b"event-details\x00" + message_id.encode())

    def _open_details(self, sealed: bytes | None, message_id: str) -> _Details:
        if not sealed:
            return _Details()
        plain = self._keys.open(sealed, b"event-details\x00" + message_id.encode())
        return _dec.decode(plain)

    def _seal(self, recipient: str, message_id: str) -> bytes:
        return self._keys.seal(recipient.encode(), b"event\x00" + message_id.encode())

    def _open(self, sealed: bytes | None, message_id: str) -> str:
        if not sealed:
            return ""
        return self._keys.open(sealed, b"event\x00" + message_id.encode()).decode()

    # -- events ------------------------------------------------------------------

    def queued(self, message_id: str, recipient: str, job: str | None = None) -> None:
        """A message accepted, buffered until :meth:`flush` like results (the
        message itself is already in the spool; reads flush first)."""
        self.add("queued", message_id, recipient, job)

    def result(self, r: DeliveryResult, job: str | None) -> None:
        """A delivery result, buffered until :meth:`flush`."""
        details = EventDetails(
            code=r.code, enhanced_status=r.enhanced_status, reply=r.reply, category=r.category
        )
        kind = cast(EventType, EVENT_TYPES.get(r.status, r.status))
        self.add(kind, r.message_id, r.recipient, job, details)

    def add(
        self,
        type: EventType,
        message_id: str,
        recipient: str,
        job: str | None = None,
        details: EventDetails | None = None,
    ) -> None:
        """Any other event (opened, clicked, complained, ...), buffered until
        :meth:`flush`."""
        self._pending.append(
            (
                time.time(),
                type,
                message_id,
                job,
                self._seal(recipient, message_id),
                self._seal_details(_stored(details), message_id) if details is not None else None,
            )
        )

    def flush(self) -> None:
        """Commit what is buffered; if it cannot be written now it stays
        buffered (in order) for the next flush."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        try:
            with self._tx() as db:
                db.executemany(
                    "INSERT INTO events (time, type, message_id, job, recipient, details)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except BaseException:
            self._pending[:0] = rows
            raise
        self._committed()

    def job_of(self, message_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT job FROM events WHERE message_id = ? AND type = 'queued' LIMIT 1",
                (message_id,),
            ).fetchone()
        return row[0] if row else None

    def events(
        self, *, after: int = 0, message_id: str | None = None, limit: int = 500
    ) -> list[Event]:
        sql = "SELECT id, type, time, message_id, job, recipient, details FROM events WHERE id > ?"
        args: list[Any] = [after]
        if message_id is not None:
            sql += " AND message_id = ?"
            args.append(message_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            Event(
                id=event_id(i),
                type=typ,
                time=t,
                tenant=self.tenant,
                message_id=mid,
                job=job,
                recipient=self._open(rcpt, mid),
                details=_shown(self._open_details(det, mid)),
            )
            for i, typ, t, mid, job, rcpt, det in rows
        ]

    def job_counts(self, job: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT type, COUNT(*) FROM events WHERE job = ? GROUP BY type", (job,)
            ).fetchall()
        return dict(rows)

    # -- jobs --------------------------------------------------------------------

    def add_job(
        self, job_id: str, name: str, total: int, template: bytes, state: str = "queued"
    ) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (job_id, name, state, now, now, total, template),
            )

    def job_written(self, job_id: str, total: int) -> None:
        """Its rows are on disk: it may be fed."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'queued', total = ?, updated = ? WHERE id = ?",
                (total, time.time(), job_id),
            )

    def drop_job(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def abandoned_jobs(self) -> list[str]:
        """Jobs a stopped server was still writing (their request got no answer):
        marked failed."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE state = 'writing'").fetchall()
            self._db.execute(
                "UPDATE jobs SET state = 'failed', updated = ? WHERE state = 'writing'",
                (time.time(),),
            )
        return [r[0] for r in rows]

    def job(self, job_id: str) -> JobRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, state, created, updated, total, next_row, template"
                " FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return JobRow(
            id=row[0], name=row[1], state=row[2], created=row[3], updated=row[4],
            total=row[5], next_row=row[6], template=row[7],
        )  # fmt: skip

    def unfinished_jobs(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created"
            ).fetchall()
        return [r[0] for r in rows]

    def set_job_state(self, job_id: str, state: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (state, time.time(), job_id)
            )

    def job_row_done(
        self, job_id: str, row: int, message_id: str, recipient: str, problem: str = ""
    ) -> None:
        """Row ``row`` of a job handed on (queued as ``message_id``), or
        refused (``problem``: a ``rejected`` event): one commit, so a restart
        goes on after it."""
        kind = "rejected" if problem else "queued"
        details = (
            self._seal_details(_Details(reply=problem, category="invalid"), message_id)
            if problem
            else None
        )
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (time, type, message_id, job, recipient, details)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), kind, message_id, job_id, self._seal(recipient, message_id),
                 details),
            )  # fmt: skip
            db.execute(
                "UPDATE jobs SET next_row = ?, updated = ? WHERE id = ?",
                (row, time.time(), job_id),
            )
        self._committed()

    # -- webhooks: the events table is their outbox, each endpoint's cursor is here --

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each commit of new events (in the
        committing thread); returns what stops it."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)

    def _committed(self) -> None:
        for callback in list(self._watchers):
            callback()

    def webhook_cursor(self, endpoint: str) -> int:
        """The last event ``endpoint`` acknowledged. A new endpoint starts
        after the newest event: it gets what happens from now on."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO webhook_cursors"
                " SELECT ?, COALESCE(MAX(id), 0), ? FROM events",
                (endpoint, time.time()),
            )
            row = self._db.execute(
                "SELECT after FROM webhook_cursors WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        return int(row[0])

    def set_webhook_cursor(self, endpoint: str, after: int) -> None:
        """``endpoint`` acknowledged every event up to ``after`` (committed
        before the next batch is read: a restart resends at most one batch)."""
        with self._lock:
            self._db.execute(
                "UPDATE webhook_cursors SET after = ?, updated = ? WHERE endpoint = ?",
                (after, time.time(), endpoint),
            )

    # -- retention ---------------------------------------------------------------

    def sweep(
        self, *, events_before: float, recipients_before: float, answers_before: float
    ) -> dict[str, int]:
        """Retention: events older than ``events_before`` go; older than
        ``recipients_before`` they lose their address and reply; finished
        jobs go with their events' addresses; idempotency answers older than
        ``answers_before`` go. Returns counts by what was done."""
        self.flush()
        anonymised = self._anonymise(recipients_before)
        with self._tx() as db:
            out = {
                "events_deleted": db.execute(
                    "DELETE FROM events WHERE time < ?", (events_before,)
                ).rowcount,
                "events_anonymised": anonymised,
                "jobs_deleted": db.execute(
                    "DELETE FROM jobs WHERE updated < ?"
                    " AND state IN ('finished', 'cancelled', 'failed')",
                    (recipients_before,),
                ).rowcount,
                "answers_deleted": db.execute(
                    "DELETE FROM idempotency WHERE created < ?", (answers_before,)
                ).rowcount,
            }
        return out

    def _anonymise(self, before: float) -> int:
        """Events before ``before`` without their address or reply (a reply
        often quotes the address); codes and categories stay."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, message_id, details FROM events"
                " WHERE time < ? AND recipient IS NOT NULL",
                (before,),
            ).fetchall()
        blank = []
        for i, mid, det in rows:
            d = self._open_details(det, mid) if det else None
            clean = self._seal_details(_stored(_without_personal(_shown(d))), mid) if d else None
            blank.append((clean, i))
        with self._tx() as db:
            db.executemany("UPDATE events SET recipient = NULL, details = ? WHERE id = ?", blank)
        return len(blank)

    def person(
        self, match: Callable[[str], bool], *, erase: bool = False, correct: str | None = None
    ) -> list[Event]:
        """One person's events (export); with ``erase`` their address and
        reply are removed; with ``correct`` the address is replaced."""
        self.flush()
        found: list[Event] = []
        last = 0
        while batch := self.events(after=last, limit=2000):
            last = batch[-1].position
            mine = [e for e in batch if e.recipient and match(e.recipient)]
            found.extend(mine)
            if not mine or not (erase or correct is not None):
                continue
            rows: list[tuple[bytes | None, bytes, int]] = []
            for e in mine:
                if erase:
                    d = _stored(_without_personal(e.details))
                    rows.append((None, self._seal_details(d, e.message_id), e.position))
                else:
                    assert correct is not None
                    sealed = self._seal(correct, e.message_id)
                    d = _stored(e.details)
                    rows.append((sealed, self._seal_details(d, e.message_id), e.position))
            with self._tx() as db:
                db.executemany("UPDATE events SET recipient = ?, details = ? WHERE id = ?", rows)
        return found

    # -- key rotation ------------------------------------------------------------

    def reseal(self, chunk: int = 1000) -> int:
        """Seal every recipient and details value again under the newest key
        (after a rotation); returns how many events changed. A transaction a
        chunk, so a running server's writes wait for one chunk at most;
        events it writes meanwhile under an older key still open with it."""
        self.flush()
        current = self._keys.current_id
        last, n = 0, 0
        while True:
            with self._tx() as db:
                rows = db.execute(
                    "SELECT id, message_id, recipient, details FROM events WHERE id > ?"
                    " ORDER BY id LIMIT ?",
                    (last, chunk),
                ).fetchall()
                changed = []
                for i, mid, rcpt, det in rows:
                    if any(v and self._keys.key_id(v) != current for v in (rcpt, det)):
                        changed.append(
                            (
                                rcpt and self._seal(self._open(rcpt, mid), mid),
                                det and self._seal_details(self._open_details(det, mid), mid),
                                i,
                            )
                        )
                db.executemany("UPDATE events SET recipient = ?, details = ? WHERE id = ?", changed)
            n += len(changed)
            if len(rows) < chunk:
                return n
            last = rows[-1][0]

    # -- templates ---------------------------------------------------------------

    def put_template(self, template_id: str, body: bytes) -> float:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO templates VALUES (?, ?, ?)", (template_id, body, now)
            )
        return now

    def template(self, template_id: str) -> tuple[bytes, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body, updated FROM templates WHERE id = ?", (template_id,)
            ).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    # -- idempotency -------------------------------------------------------------

    def answer(self, key: str, request: str) -> tuple[int, bytes] | bool | None:
        """The stored answer for ``key`` (status, body); True when ``key`` was
        used for another request; None when new (then it is reserved)."""
        with self._lock:
            row = self._db.execute(
                "SELECT request, status, body FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO idempotency VALUES (?, ?, NULL, NULL, ?)",
                    (key, request, time.time()),
                )
                return None
        if row[0] != request:
            return True
        if row[1] is None:
            return False  # the first request is still being answered
        return int(row[1]), bytes(row[2])

    def remember(self, key: str, status: int, body: bytes) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE idempotency SET status = ?, body = ? WHERE key = ?", (status, body, key)
            )

    def forget_answer(self, key: str) -> None:
        """The request failed before anything was accepted: the key is free again."""
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE key = ? AND status IS NULL", (key,))

    def release_unanswered(self) -> int:
        """At start: reservations a stopped server never answered are freed,
        so a client's retry is served (it may send again what a crash cut
        off between the spool's commit and this log's: one message per key)."""
        with self._lock:
            return self._db.execute("DELETE FROM idempotency WHERE status IS NULL").rowcount
