"""The tracking event store and suppression list (SQLite, stdlib ``sqlite3``).

Recording is off the request path: :meth:`EventStore.record` appends to an
in-memory queue and returns; a writer thread drains the queue and inserts
each batch in one transaction (WAL journal, ``synchronous=NORMAL``: no fsync
per commit).  :meth:`EventStore.flush` waits until everything recorded so
far is committed.

Personal data (recipient address, URL, user agent, client IP when kept) is
sealed with AES-256-GCM (:mod:`mailsflux.tracking.pii`); the address also gets a
keyed HMAC column so one person's data can be found, exported and erased.
Retention (:meth:`EventStore.purge`): events are deleted after
``events_days`` (365), their personal columns scrubbed after
``personal_days`` (90), leaving counts per job, message and kind.

The suppression list lives in the same file: :meth:`EventStore.suppress`
(synchronous, durable before it returns), :meth:`EventStore.is_suppressed`
for the sender, and erasure that keeps only the keyed hash, so an erased
person's opt-out still holds.
"""

from __future__ import annotations

import collections
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from mailsflux import masking
from mailsflux.compose import normalize_address
from mailsflux.tracking.pii import PersonalData

log = masking.logger("mailsflux.tracking")  # addresses masked in every record

#: ``unsubscribe``/``resubscribe``: everything this sender sends; ``-list``:
#: one list (the event's job); ``objection``: to open and click tracking.
TrackKind = Literal[
    "open",
    "click",
    "unsubscribe",
    "unsubscribe-list",
    "resubscribe",
    "resubscribe-list",
    "objection",
    "objection-withdrawn",
]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    job TEXT NOT NULL,
    message_id TEXT NOT NULL,
    machine INTEGER NOT NULL,
    reason TEXT NOT NULL,
    rcpt_h BLOB,
    rcpt BLOB,
    url BLOB,
    ua BLOB,
    ip BLOB
);
CREATE INDEX IF NOT EXISTS events_rcpt_h ON events (rcpt_h);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id);
CREATE TABLE IF NOT EXISTS suppression (
    addr_h BLOB PRIMARY KEY,
    addr BLOB,
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    job TEXT NOT NULL,
    message_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS list_suppression (
    addr_h BLOB NOT NULL,
    list TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    message_id TEXT NOT NULL,
    addr BLOB,
    PRIMARY KEY (addr_h, list)
);
CREATE TABLE IF NOT EXISTS tracking_objection (
    addr_h BLOB PRIMARY KEY,
    at REAL NOT NULL
);
"""

_INSERT: Final = (
    "INSERT INTO events (at, kind, job, message_id, machine, reason, rcpt_h, rcpt, url, ua, ip)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DAY: Final = 86400.0


class TrackEvent(msgspec.Struct, frozen=True, gc=False):
    """One open, click or unsubscribe as recorded (never message content)."""

    kind: TrackKind
    at: float
    message_id: str
    recipient: str | None
    job: str = ""
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    #: Made by a machine (privacy proxy, link scanner, HEAD), not a person.
    machine: bool = False
    #: Why it was flagged: "head", "proxy:...", "scanner:...", "fast", "no-user-agent".
    reason: str = ""


class Suppressed(msgspec.Struct, frozen=True):
    at: float
    reason: str
    job: str
    message_id: str
    #: ``None`` once erased: then only the keyed hash is kept.
    address: str | None


class ListSuppressed(msgspec.Struct, frozen=True):
    """One address's opt-out of one list (a job name): other lists still reach it."""

    list: str
    at: float
    reason: str
    message_id: str


class SuppressionRecord(msgspec.Struct, frozen=True):
    """One entry of either scope, as :meth:`EventStore.suppression_records` lists them."""

    #: ``None`` once erased, or for a list opt-out recorded before list
    #: entries kept their address: only the keyed hash is left.
    address: str | None
    #: The list (a job name) for a one-list opt-out; ``""`` for every list.
    list: str
    at: float
    reason: str
    job: str
    message_id: str


class Retention(msgspec.Struct, frozen=True):
    events_days: float = 365.0
    personal_days: float = 90.0


class PurgeResult(msgspec.Struct, frozen=True):
    deleted: int
    scrubbed: int


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _add_list_address(conn: sqlite3.Connection) -> None:
    """Stores made before list opt-outs kept their (sealed) address get the column."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(list_suppression)")}
    if "addr" not in columns:
        try:
            conn.execute("ALTER TABLE list_suppression ADD COLUMN addr BLOB")
        except sqlite3.OperationalError as exc:  # another process added it meanwhile
            if "duplicate column" not in str(exc):
                raise


class SuppressionView:
    """A sending job's copy of the suppression list: keyed hashes in a set.

    Checking a row costs one HMAC and a set lookup instead of a query.
    Entries added meanwhile (an unsubscribe through the tracking server, a
    bounce) are read in every ``refresh`` seconds; a removal is seen by the
    next job, which errs on the side of not sending.
    """

    def __init__(
        self,
        store: EventStore,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        list_name: str | None = None,
    ) -> None:
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._list = list_name
        self._hashes: set[bytes] = set()
        self._rowid = 0
        self._list_rowid = 0
        self._at = -math.inf

    def _update(self) -> None:
        for rowid, h in self._store._suppressed_after(self._rowid):
            self._hashes.add(h)
            self._rowid = rowid
        if self._list is not None:
            for rowid, h in self._store._list_suppressed_after(self._list, self._list_rowid):
                self._hashes.add(h)
                self._list_rowid = rowid
        self._at = self._clock()

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and self.among([address]) is not None

    def among(self, addresses: Sequence[str]) -> list[bool] | None:
        """``[a in self for a in addresses]`` with one look for changes, or
        None when none of them is suppressed (and no keyed hash at all while
        nobody is: the usual case)."""
        if self._clock() - self._at >= self._refresh:
            self._update()
        if not self._hashes:
            return None
        lookup, hashes = self._store._pii.lookup, self._hashes
        hits = [lookup(a) in hashes for a in addresses]
        return hits if any(hits) else None

    def add(self, address: str) -> None:
        """Count ``address`` as suppressed at once (the store has it too)."""
        self._hashes.add(self._store._pii.lookup(address))


class ObjectionView:
    """Who objected to tracking, in memory: a click or an open costs one HMAC
    and a set lookup, not a query.  Re-read every ``refresh`` seconds (other
    servers on the same store); this server's own changes count at once."""

    def __init__(
        self, store: EventStore, refresh: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._hashes: set[bytes] = set()
        self._at = -math.inf

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        if self._clock() - self._at >= self._refresh:
            self._hashes = self._store._objection_hashes()
            self._at = self._clock()
        return self._store._pii.lookup(address) in self._hashes

    def set(self, address: str, objects: bool) -> None:
        h = self._store._pii.lookup(address)
        if objects:
            self._hashes.add(h)
        else:
            self._hashes.discard(h)


class EventStore:
    """Events and suppressions in one SQLite file; see the module docstring.

    ``secret`` (at least 32 bytes) keys encryption and lookups; opening a
    store with another secret raises ``ValueError``.  ``queue_max`` bounds
    the events waiting for the writer; beyond it events are counted in
    :attr:`dropped` rather than exhausting memory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        secret: bytes,
        *,
        retention: Retention | None = None,
        queue_max: int = 500_000,
        batch_max: int = 5_000,
        interval: float = 0.02,
    ) -> None:
        self.path = str(path)
        self.retention = retention or Retention()
        self.queue_max = queue_max
        self.batch_max = batch_max
        self.interval = interval
        self.dropped = 0
        self._pii = PersonalData(secret)
        if self.path != ":memory:" and not Path(self.path).exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.Lock()
        self._conn = _connect(self.path)
        with self._lock:
            self._conn.executescript(_SCHEMA)
            check = self._pii.check_value()
            row = self._conn.execute("SELECT v FROM meta WHERE k = 'check'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta (k, v) VALUES ('check', ?)", (check,))
            elif row[0] != check:
                self._conn.close()
                raise ValueError(f"{self.path}: the store was created with another secret")
            _add_list_address(self._conn)
        self._queue: collections.deque[TrackEvent | threading.Event] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- writing -----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (``record`` starts it on first use too)."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="mailsflux-event-writer", daemon=True
                )
                self._thread.start()

    def record(self, event: TrackEvent) -> bool:
        """Queue an event for the writer; never blocks. ``False`` if dropped."""
        if len(self._queue) >= self.queue_max:
            self.dropped += 1
            return False
        self._queue.append(event)
        if self._thread is None:
            self.start()
        return True

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every event recorded before the call is committed."""
        if self._thread is None:
            return True
        mark = threading.Event()
        self._queue.append(mark)
        return mark.wait(timeout)

    def close(self) -> None:
        """Write what is queued, stop the writer, close the database."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(self, e: TrackEvent) -> tuple[Any, ...]:
        p = self._pii
        return (
            e.at,
            e.kind,
            e.job,
            e.message_id,
            1 if e.machine else 0,
            e.reason,
            None if e.recipient is None else p.lookup(e.recipient),
            None if e.recipient is None else p.seal(e.recipient, b"rcpt"),
            None if e.url is None else p.seal(e.url, b"url"),
            None if e.user_agent is None else p.seal(e.user_agent, b"ua"),
            None if e.ip is None else p.seal(e.ip, b"ip"),
        )

    def _run(self) -> None:
        conn = _connect(self.path)
        q = self._queue
        try:
            while True:
                batch: list[TrackEvent] = []
                marks: list[threading.Event] = []
                while q and len(batch) < self.batch_max:
                    item = q.popleft()
                    if isinstance(item, threading.Event):
                        marks.append(item)
                        if batch:
                            break
                    else:
                        batch.append(item)
                if batch:
                    try:
                        rows = [self._row(e) for e in batch]
                        conn.execute("BEGIN")
                        conn.executemany(_INSERT, rows)
                        conn.execute("COMMIT")
                    except sqlite3.Error as exc:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        log.error("tracking events not written yet (%s); retrying", exc)
                        q.extendleft(reversed([*batch, *marks]))
                        self._stop.wait(1.0)
                        continue
                for m in marks:
                    m.set()
                if not batch and not marks:
                    if self._stop.is_set():
                        break
                    self._stop.wait(self.interval)
        finally:
            conn.close()

    # -- reading -----------------------------------------------------------

    def _event(self, r: tuple[Any, ...]) -> TrackEvent:
        p = self._pii
        return TrackEvent(
            at=r[0],
            kind=r[1],
            job=r[2],
            message_id=r[3],
            machine=bool(r[4]),
            reason=r[5],
            recipient=p.open(r[6], b"rcpt"),
            url=p.open(r[7], b"url"),
            user_agent=p.open(r[8], b"ua"),
            ip=p.open(r[9], b"ip"),
        )

    def events(
        self,
        *,
        recipient: str | None = None,
        message_id: str | None = None,
        kind: TrackKind | None = None,
        limit: int | None = None,
    ) -> list[TrackEvent]:
        """Committed events, oldest first, decrypted."""
        where: list[str] = []
        args: list[Any] = []
        if recipient is not None:
            where.append("rcpt_h = ?")
            args.append(self._pii.lookup(recipient))
        if message_id is not None:
            where.append("message_id = ?")
            args.append(message_id)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT at, kind, job, message_id, machine, reason, rcpt, url, ua, ip FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._event(r) for r in rows]

    def count(self, kind: TrackKind | None = None, *, machine: bool | None = None) -> int:
        sql = "SELECT COUNT(*) FROM events WHERE 1"
        args: list[Any] = []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if machine is not None:
            sql += " AND machine = ?"
            args.append(1 if machine else 0)
        with self._lock:
            return int(self._conn.execute(sql, args).fetchone()[0])

    # -- suppression ---------------------------------------------------------

    def suppress(
        self,
        address: str,
        *,
        reason: str = "unsubscribe",
        job: str = "",
        message_id: str = "",
        at: float | None = None,
    ) -> bool:
        """Add an address (committed before returning); ``False`` if already there."""
        p = self._pii
        when = time.time() if at is None else at
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO suppression (addr_h, addr, at, reason, job, message_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    p.lookup(address),
                    p.seal(normalize_address(address), b"addr"),
                    when,
                    reason,
                    job,
                    message_id,
                ),
            )
            return cur.rowcount == 1

    def is_suppressed(self, address: str) -> bool:
        """True when mail to ``address`` must not be sent."""
        h = self._pii.lookup(address)
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM suppression WHERE addr_h = ?", (h,)).fetchone()
        return row is not None

    def suppressed_view(
        self, refresh: float = 5.0, *, list_name: str | None = None
    ) -> SuppressionView:
        """The suppression list in memory, for checking every row of a job fast.

        With ``list_name`` (the job's name) the opt-outs of that list count too.
        """
        return SuppressionView(self, refresh, list_name=list_name)

    def _list_suppressed_after(self, list_name: str, rowid: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT rowid, addr_h FROM list_suppression WHERE list = ? AND rowid > ?"
                " ORDER BY rowid",
                (list_name, rowid),
            ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    # -- list scope and the objection to tracking ----------------------------

    def suppress_list(
        self,
        address: str,
        list_name: str,
        *,
        reason: str = "unsubscribe",
        message_id: str = "",
        at: float | None = None,
    ) -> bool:
        """Stop one list (a job name) for an address; ``False`` if already so."""
        when = time.time() if at is None else at
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO list_suppression"
                " (addr_h, list, at, reason, message_id, addr) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self._pii.lookup(address),
                    list_name,
                    when,
                    reason,
                    message_id,
                    self._pii.seal(normalize_address(address), b"addr"),
                ),
            )
            return cur.rowcount == 1

    def unsuppress_list(self, address: str, list_name: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM list_suppression WHERE addr_h = ? AND list = ?",
                (self._pii.lookup(address), list_name),
            )
            return cur.rowcount > 0

    def list_suppressions(self, address: str) -> dict[str, ListSuppressed]:
        """The lists an address opted out of, by list name."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT list, at, reason, message_id FROM list_suppression WHERE addr_h = ?",
                (self._pii.lookup(address),),
            ).fetchall()
        return {
            r[0]: ListSuppressed(list=r[0], at=r[1], reason=r[2], message_id=r[3]) for r in rows
        }

    def is_suppressed_for(self, address: str, list_name: str) -> bool:
        """True when mail of ``list_name`` must not go to ``address`` (either scope)."""
        h = self._pii.lookup(address)
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM suppression WHERE addr_h = ? UNION ALL"
                " SELECT 1 FROM list_suppression WHERE addr_h = ? AND list = ?",
                (h, h, list_name),
            ).fetchone()
        return row is not None

    def lists_seen(self, address: str) -> list[str]:
        """The lists (job names) this address's events and opt-outs name."""
        h = self._pii.lookup(address)
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT job FROM events WHERE rcpt_h = ? AND job != '' UNION"
                " SELECT list FROM list_suppression WHERE addr_h = ?",
                (h, h),
            ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def set_tracking_objection(self, address: str, objects: bool, at: float | None = None) -> bool:
        """Record (or withdraw) an objection to open and click tracking; ``True`` if changed."""
        h = self._pii.lookup(address)
        with self._lock:
            if objects:
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO tracking_objection (addr_h, at) VALUES (?, ?)",
                    (h, time.time() if at is None else at),
                )
            else:
                cur = self._conn.execute("DELETE FROM tracking_objection WHERE addr_h = ?", (h,))
            return cur.rowcount > 0

    def objection_view(self, refresh: float = 2.0) -> ObjectionView:
        """The objections to tracking in memory, for the server's every open and click."""
        return ObjectionView(self, refresh)

    def _objection_hashes(self) -> set[bytes]:
        with self._lock:
            rows = self._conn.execute("SELECT addr_h FROM tracking_objection").fetchall()
        return {bytes(r[0]) for r in rows}

    def objects_to_tracking(self, address: str) -> bool:
        """Has this person objected to tracking? Then their opens and clicks go unrecorded."""
        h = self._pii.lookup(address)
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM tracking_objection WHERE addr_h = ?", (h,)
            ).fetchone()
        return row is not None

    def _suppressed_after(self, rowid: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT rowid, addr_h FROM suppression WHERE rowid > ? ORDER BY rowid", (rowid,)
            ).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def unsuppress(self, address: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM suppression WHERE addr_h = ?", (self._pii.lookup(address),)
            )
            return cur.rowcount > 0

    def suppression(self, address: str) -> Suppressed | None:
        with self._lock:
            r = self._conn.execute(
                "SELECT at, reason, job, message_id, addr FROM suppression WHERE addr_h = ?",
                (self._pii.lookup(address),),
            ).fetchone()
        if r is None:
            return None
        return Suppressed(
            at=r[0],
            reason=r[1],
            job=r[2],
            message_id=r[3],
            address=self._pii.open(r[4], b"addr"),
        )

    def suppress_many(self, entries: Iterable[tuple[str, str, float, str]]) -> int:
        """Add ``(address, reason, at, list)`` entries in one transaction
        (``list`` ``""``: every list); returns how many were new.

        An import's batch: one commit instead of one per address.
        """
        p = self._pii
        added = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for address, reason, at, list_name in entries:
                    h = p.lookup(address)
                    sealed = p.seal(normalize_address(address), b"addr")
                    if list_name:
                        cur = self._conn.execute(
                            "INSERT OR IGNORE INTO list_suppression"
                            " (addr_h, list, at, reason, message_id, addr)"
                            " VALUES (?, ?, ?, ?, '', ?)",
                            (h, list_name, at, reason, sealed),
                        )
                    else:
                        cur = self._conn.execute(
                            "INSERT OR IGNORE INTO suppression"
                            " (addr_h, addr, at, reason, job, message_id)"
                            " VALUES (?, ?, ?, ?, '', '')",
                            (h, sealed, at, reason),
                        )
                    added += cur.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return added

    def suppression_records(
        self, *, list_name: str | None = None, batch: int = 1000
    ) -> Iterator[SuppressionRecord]:
        """Every entry, oldest first: the every-list ones, then the one-list ones.

        ``list_name`` ``""`` keeps only every-list entries, a name only that
        list's.  Read ``batch`` rows at a time, so a long list never sits in
        memory whole and the store stays usable between batches.
        """
        queries: list[tuple[str, tuple[Any, ...]]] = []
        if not list_name:
            queries.append(
                (
                    "SELECT rowid, addr, '', at, reason, job, message_id FROM suppression"
                    " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (),
                )
            )
        if list_name is None or list_name:
            # ``? IS NULL``: one constant query for every list or one.
            queries.append(
                (
                    "SELECT rowid, addr, list, at, reason, '', message_id FROM list_suppression"
                    " WHERE rowid > ? AND (? IS NULL OR list = ?) ORDER BY rowid LIMIT ?",
                    (list_name or None, list_name or None),
                )
            )
        for sql, extra in queries:
            after = 0
            while True:
                with self._lock:
                    rows = self._conn.execute(sql, (after, *extra, batch)).fetchall()
                for r in rows:
                    yield SuppressionRecord(
                        address=self._pii.open(r[1], b"addr"),
                        list=r[2],
                        at=r[3],
                        reason=r[4],
                        job=r[5],
                        message_id=r[6],
                    )
                if len(rows) < batch:
                    break
                after = int(rows[-1][0])

    # -- data subject rights and retention ---------------------------------

    def export(self, address: str) -> dict[str, Any]:
        """Everything held about one address, as JSON-ready builtins."""
        self.flush()
        return {
            "address": normalize_address(address),
            "exported_at": time.time(),
            "events": msgspec.to_builtins(self.events(recipient=address)),
            "suppression": msgspec.to_builtins(self.suppression(address)),
            "list_suppressions": msgspec.to_builtins(
                sorted(self.list_suppressions(address).values(), key=lambda x: x.list)
            ),
            "tracking_objection": self.objects_to_tracking(address),
        }

    def export_json(self, address: str) -> bytes:
        return msgspec.json.encode(self.export(address))

    def erase(self, address: str, *, keep_suppression: bool = True) -> int:
        """Delete one address's events; returns how many.

        With ``keep_suppression`` (the default) a suppression entry keeps only
        its keyed hash, so the opt-out is still honoured without the address.
        """
        self.flush()
        h = self._pii.lookup(address)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._conn.execute("DELETE FROM events WHERE rcpt_h = ?", (h,)).rowcount
                if keep_suppression:
                    self._conn.execute("UPDATE suppression SET addr = NULL WHERE addr_h = ?", (h,))
                    self._conn.execute(
                        "UPDATE list_suppression SET addr = NULL WHERE addr_h = ?", (h,)
                    )
                else:
                    self._conn.execute("DELETE FROM suppression WHERE addr_h = ?", (h,))
                    self._conn.execute("DELETE FROM list_suppression WHERE addr_h = ?", (h,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return int(n)

    def purge(self, now: float | None = None) -> PurgeResult:
        """Apply retention: delete old events, scrub personal data from older ones."""
        t = time.time() if now is None else now
        r = self.retention
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._conn.execute(
                    "DELETE FROM events WHERE at < ?", (t - r.events_days * _DAY,)
                ).rowcount
                scrubbed = self._conn.execute(
                    "UPDATE events SET rcpt_h = NULL, rcpt = NULL, url = NULL, ua = NULL,"
                    " ip = NULL WHERE at < ? AND (rcpt_h IS NOT NULL OR url IS NOT NULL"
                    " OR ua IS NOT NULL OR ip IS NOT NULL)",
                    (t - r.personal_days * _DAY,),
                ).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return PurgeResult(deleted=int(deleted), scrubbed=int(scrubbed))


__all__ = [
    "EventStore",
    "ListSuppressed",
    "ObjectionView",
    "PurgeResult",
    "Retention",
    "Suppressed",
    "SuppressionRecord",
    "TrackEvent",
    "TrackKind",
]
