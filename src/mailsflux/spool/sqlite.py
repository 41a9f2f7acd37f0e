"""The embedded spool: one SQLite database in a directory, in WAL mode.

Why SQLite: it needs no server, a transaction is atomic whatever kills the
process, and several processes (``--workers``, ``queue run`` beside a
``send``) may write the same file. WAL with ``synchronous=NORMAL``: a
commit is a write() to the log, not an fsync, so it survives the process
being killed (SIGKILL, OOM) but the last commits may be lost if the machine
loses power; ``durable=True`` (``[spool] fsync = true``) fsyncs every commit
for that. Results are committed in groups (one transaction per SMTP batch
of up to 32 messages), so the cost per message stays small.

Nothing in the file names a person or holds a message in plain text:
addresses, replies (which often quote the address) and message bytes are
sealed with AES-256-GCM (:mod:`mailsflux.spool.keys`); a row number, a
state, counts, times and the recipient's domain are not.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any, Final, cast

import msgspec

from mailsflux.errors import SpoolError
from mailsflux.spool._records import COLUMNS, META_AT
from mailsflux.spool._records import context as _context
from mailsflux.spool._records import row_values as _row_values
from mailsflux.spool.keys import SpoolKeys
from mailsflux.spool.store import FINAL, JobInfo, Record, Spooled
from mailsflux.types import RenderedMessage

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, info BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rcpt (
    job TEXT NOT NULL, row INTEGER NOT NULL, state TEXT NOT NULL, domain TEXT NOT NULL,
    attempts INTEGER NOT NULL, first_at REAL NOT NULL, next_at REAL NOT NULL,
    code INTEGER, category TEXT NOT NULL, updated REAL NOT NULL, meta BLOB NOT NULL,
    claimed REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rcpt_due ON rcpt (next_at) WHERE state IN ('deferred', 'pending');
CREATE INDEX IF NOT EXISTS rcpt_job_due ON rcpt (job, next_at)
    WHERE state IN ('deferred', 'pending');
CREATE TABLE IF NOT EXISTS body (
    job TEXT NOT NULL, row INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (job, row)
) WITHOUT ROWID;
"""

#: A message taken from the spool to be tried is claimed for this long
#: (``claimed``, beside its own ``next_at``): other runners leave it alone,
#: its holder renews the claim, and a crash makes it due once it runs out.
CLAIM: Final = 900.0

#: How long, in all, a write waits for the spool's write lock (another
#: process's transaction), and a read for the database to open to it.
LOCK_WAIT: Final = 60.0
#: The first pause between tries for the write lock, and the longest: it
#: doubles from one to the other (see :meth:`SQLiteSpool._begin`).
_PAUSE_FIRST: Final = 50e-6
_PAUSE_MAX: Final = 1e-3

_meta_enc = msgspec.msgpack.Encoder()
#: A batch's rows as :meth:`SQLiteSpool._made` makes them: the ``rcpt``
#: values (flat), the rows with a body, those bodies sealed, and the rows
#: settled for good (whose bodies go).
_Made = tuple[list[Any], list[int], list[bytes] | list[bytearray], list[int]]
#: A record's sealed part: recipient, message id, reply, enhanced status.
_Meta = tuple[str, str, str, str | None]
_meta_dec = msgspec.msgpack.Decoder(_Meta)


def person_record(
    job: str,
    row: int,
    state: str | None,
    updated: float,
    meta: _Meta,
    *,
    erase: bool,
    correct: str | None,
) -> tuple[dict[str, Any], bytes | None]:
    """One person's record as an export lists it, and its sealed part as
    ``erase`` (address and reply blanked) or ``correct`` (the new address)
    leaves it, to seal again; None when neither asks for a change. Both
    spools answer a person's rights with it."""
    rcpt, mid, reply, enhanced = meta
    doc = {"job": job, "row": row, "state": state, "recipient": rcpt,
           "message_id": mid, "reply": reply, "updated": updated}  # fmt: skip
    if erase:
        return doc, _meta_enc.encode(("", mid, "", enhanced))
    if correct is not None:
        return doc, _meta_enc.encode((correct, mid, reply, enhanced))
    return doc, None


#: Retention: settled records last changed before a time (states: spool.FINAL),
#: a chunk at a time (a sweep must not hold the spool's write lock for long),
#: after row ``row > ?`` (the rows already looked at).
_SWEEP_SELECT = (
    "SELECT row, meta FROM rcpt WHERE job = ? AND row > ? AND updated < ?"
    " AND state IN ('bounced', 'delivered', 'failed', 'skipped', 'suppressed')"
    " ORDER BY row LIMIT 1000"
)
#: A job's deferred and pending rows, read through ``rcpt_job_due`` (the
#: statement fails rather than scan the job if the index cannot serve it);
#: ``%s`` is what is selected of them.
_WAITING_JOB: Final = (
    "%s FROM rcpt INDEXED BY rcpt_job_due WHERE job = ? AND state IN ('deferred', 'pending')"
)
_msg_dec = msgspec.msgpack.Decoder(RenderedMessage)
_msg_enc = msgspec.msgpack.Encoder()
_info_dec = msgspec.json.Decoder(JobInfo)
_info_enc = msgspec.json.encode


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` lives on this host (and is not this one)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Records written by one INSERT: its VALUES list has this many rows of 12
#: columns (1 + 32 * 11 = 353 parameters, below the 999 that SQLite allowed
#: before 3.32).
_PUT_ROWS: Final = 32
#: Values of a row of ``rcpt`` after its job, as the compiled row maker lays
#: them out: the job, the same for every row of a statement, is its ?1.
_RCPT_COLUMNS: Final = COLUMNS
#: Where ``meta`` (the sealed part) is among them.
_META_COLUMN: Final = META_AT


@functools.cache
def _put_sql(n: int) -> str:
    # Only placeholders are joined in: the values are bound. Row i's own
    # values are ?(2 + i * _RCPT_COLUMNS) on.
    rows = [
        "(?1," + ",".join(f"?{2 + i * _RCPT_COLUMNS + k}" for k in range(_RCPT_COLUMNS)) + ")"
        for i in range(n)
    ]
    return "INSERT OR REPLACE INTO rcpt VALUES " + ",".join(rows)  # noqa: S608


def _put_rows(db: sqlite3.Connection, job: str, values: list[Any]) -> None:
    """INSERT OR REPLACE into ``rcpt`` the rows of ``job`` whose values
    ``values`` holds one row after another, up to _PUT_ROWS rows a
    statement: one statement step for many rows costs about 1 us a row less
    than ``executemany``, which steps and resets the statement for each.
    Flat, as the statement binds them: no tuple a row to take apart again.
    The job is bound once a statement: each text bound is copied into memory
    SQLite allocates, about 800 instructions a value."""
    step = _PUT_ROWS * _RCPT_COLUMNS
    for i in range(0, len(values), step):
        chunk = values[i : i + step]
        db.execute(_put_sql(len(chunk) // _RCPT_COLUMNS), [job, *chunk])


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite said SQLITE_BUSY (any of its extended forms): another
    connection holds what the statement needs."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


def _ctx(job: str, row: int, part: bytes) -> bytes:
    """What a sealed part of a row is bound to: its job, its row, which part."""
    return _context(_job_ctx(job), row, part)


def _job_ctx(job: str) -> bytes:
    """The job's share of :func:`_ctx`, made once for a batch of its rows."""
    return f"{job}\x00".encode()


class SQLiteSpool:
    """The spool in ``directory`` (created 0700): ``spool.db`` and its key file."""

    def __init__(
        self,
        directory: str | Path,
        *,
        keys: SpoolKeys | None = None,
        key_file: str | Path | None = None,
        durable: bool = False,
        claim: float = CLAIM,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.directory = Path(directory)
        self.claim = claim
        self.lock_wait = lock_wait
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = self.directory / "spool.db"
            # An empty database file is a spool a crash cut off between
            # creating it and writing its key: it holds nothing a new key
            # could fail to open, so it is made afresh.
            fresh = not db.exists() or db.stat().st_size == 0
            if fresh:
                # Created 0600 before SQLite opens it (its -wal and -shm files
                # take the database's mode).
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise SpoolError(f"cannot create the spool: {exc}", file=str(directory)) from None
        # A key is made only with a new spool: an existing one whose key file
        # is missing (a secret mount not there, a wrong --key-file) must not
        # get a new key its records do not open with.
        self.keys = keys or SpoolKeys.load(Path(key_file or self.directory / "keys"), create=fresh)
        try:
            self._db = sqlite3.connect(db, timeout=lock_wait, isolation_level=None)
            (mode,) = self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            # In WAL mode a statement meets another process only where it
            # starts a transaction (BEGIN IMMEDIATE, a read's snapshot): there
            # this spool waits itself (_begin, _q), not in SQLite's busy
            # handler. Where WAL is refused (a network file system), a commit
            # waits for readers too, so SQLite's waiting stays.
            self._waits = mode.lower() == "wal"
            if self._waits:
                self._db.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool database: {exc}", file=str(db)) from None
        self.path = db

    # -- plumbing -------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a full disk or other failure says so and rolls back."""
        db = self._db
        try:
            self._begin(db)
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise SpoolError(f"spool write failed: {exc}", file=str(self.path)) from None

    def _begin(self, db: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE: the write lock, waited for while another process
        holds it, ``lock_wait`` seconds in all.

        SQLite's own wait sleeps 1 ms, then 2, 5, 10 ms and on, and a worker
        process's whole event loop (its connections, its replies) stands
        still meanwhile, for a lock the other workers hold about 0.2 ms each
        (a batch's records): the more workers, the more often they meet.
        Tried again after 50 us here, the pause doubling up to 1 ms.
        """
        self._waiting(db, "BEGIN IMMEDIATE", ())

    def _waiting(self, db: sqlite3.Connection, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        """``db.execute(sql, args)``, tried again while SQLite says another
        connection holds what it needs (see :meth:`_begin`); where SQLite
        waits itself (no WAL) its answer is final."""
        try:
            return db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            if not self._waits or not _busy(exc):
                raise
        deadline = time.monotonic() + self.lock_wait
        pause = _PAUSE_FIRST
        while True:
            time.sleep(pause)
            try:
                return db.execute(sql, args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
            pause = min(pause * 2, _PAUSE_MAX)

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._waiting(self._db, sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"spool read failed: {exc}", file=str(self.path)) from None

    def _record(self, job: str, row: tuple[Any, ...]) -> Record:
        n, state, domain, attempts, first_at, next_at, code, category, updated, meta = row[:10]
        rcpt, mid, reply, enhanced = _meta_dec.decode(self.keys.open(meta, _ctx(job, n, b"meta")))
        return Record(
            row=n,
            state=state,
            recipient=rcpt,
            message_id=mid,
            domain=domain,
            attempts=attempts,
            first_at=first_at,
            next_at=next_at,
            code=code,
            enhanced_status=enhanced,
            reply=reply,
            category=category,
            updated=updated,
        )

    # -- jobs -----------------------------------------------------------------

    def begin_job(self, info: JobInfo, *, restart: bool = False, joining: bool = False) -> JobInfo:
        """``joining``: a worker process of the run that began the job."""
        now = time.time()
        with self._tx() as db:
            got = db.execute("SELECT info FROM jobs WHERE id = ?", (info.id,)).fetchone()
            old = _info_dec.decode(got[0]) if got is not None else None
            if old is not None and not joining and old.state == "running" and pid_alive(old.pid):
                raise SpoolError(
                    f"job {old.name!r} is running now (process {old.pid}); wait for it,"
                    " or stop it first: two runs would send the rows neither has recorded"
                )
            if restart and old is not None:
                (waiting,) = db.execute(_WAITING_JOB % "SELECT count(*)", (info.id,)).fetchone()
                if waiting:
                    raise SpoolError(
                        f"job {old.name!r} still has {waiting} deferred messages in the spool:"
                        " --restart would forget them. Let them finish (`mailsflux queue run`),"
                        f" or give them up first (`mailsflux queue drop {info.id}`)"
                    )
                self._forget(db, info.id)
                got = None
            if got is not None:
                old = _info_dec.decode(got[0])
                if old.fingerprint != info.fingerprint:
                    raise SpoolError(
                        f"job {old.name!r} was interrupted and its recipients have changed since"
                        f" ({old.source}): resuming would mix two lists. Restore the file, or"
                        " start the job over with --restart"
                    )
                info = old
            else:
                info.created = now
            (settled,) = db.execute(
                "SELECT count(*) FROM rcpt WHERE job = ? AND state != 'pending'", (info.id,)
            ).fetchone()
            if not joining:
                info.state, info.run_started, info.run_base = "running", now, settled
                info.pid = os.getpid()
            info.updated = now
            db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?)", (info.id, msgspec.json.encode(info))
            )
        return info

    def set_total(self, job: str, total: int) -> None:
        with self._tx() as db:
            got = db.execute("SELECT info FROM jobs WHERE id = ?", (job,)).fetchone()
            if got is not None:
                info = _info_dec.decode(got[0])
                info.total = total
                db.execute(
                    "UPDATE jobs SET info = ? WHERE id = ?", (msgspec.json.encode(info), job)
                )

    def end_job(self, job: str, state: str) -> None:
        with self._tx() as db:
            got = db.execute("SELECT info FROM jobs WHERE id = ?", (job,)).fetchone()
            if got is not None:
                info = _info_dec.decode(got[0])
                info.state, info.updated, info.pid = state, time.time(), 0
                db.execute(
                    "UPDATE jobs SET info = ? WHERE id = ?", (msgspec.json.encode(info), job)
                )

    def _forget(self, db: sqlite3.Connection, job: str) -> None:
        db.execute("DELETE FROM jobs WHERE id = ?", (job,))
        db.execute("DELETE FROM rcpt WHERE job = ?", (job,))
        db.execute("DELETE FROM body WHERE job = ?", (job,))

    def forget(self, job: str) -> None:
        with self._tx() as db:
            self._forget(db, job)

    def job(self, job: str) -> JobInfo | None:
        got = self._q("SELECT info FROM jobs WHERE id = ?", (job,))
        return _info_dec.decode(got[0][0]) if got else None

    def jobs(self) -> list[JobInfo]:
        infos = [_info_dec.decode(b) for (b,) in self._q("SELECT info FROM jobs")]
        return sorted(infos, key=lambda i: i.created)

    def settled_rows(self, job: str) -> bytearray:
        rows = [
            r
            for (r,) in self._q("SELECT row FROM rcpt WHERE job = ? AND state != 'pending'", (job,))
        ]
        bits = bytearray((max(rows, default=0) >> 3) + 1)
        for r in rows:
            bits[r >> 3] |= 1 << (r & 7)
        return bits

    # -- records --------------------------------------------------------------

    def store(self, job: str, records: Sequence[Record]) -> None:
        if not records:
            return
        now = time.time()
        # Made and sealed before the write lock is taken: other processes
        # wait only for the rows going in.
        made = self._made(job, records, now)
        with self._tx() as db:
            self._put(db, job, made)

    def _made(self, job: str, records: Sequence[Record], now: float, claimed: float = 0.0) -> _Made:
        """The rows of ``records`` as ``rcpt`` and ``body`` take them, sealed."""
        # Made and sealed in compiled code: a record a message, a commit a batch.
        values, metas, bodies, body_rows, released = _row_values(
            records if isinstance(records, list) else list(records),
            _job_ctx(job),
            now,
            claimed,
            _meta_enc.encode,
            _msg_enc.encode,
            FINAL,
        )
        # Sealed together: one draw of nonces for the batch, not one a row.
        # As bytearrays: sqlite3 binds those without its adapter lookup.
        values[_META_COLUMN::_RCPT_COLUMNS] = self.keys.seal_many(metas, blob=True)
        sealed = self.keys.seal_many(bodies, blob=True) if bodies else []
        return values, body_rows, sealed, released

    def _put(self, db: sqlite3.Connection, job: str, made: _Made) -> None:
        """Write what :meth:`_made` made, inside the write transaction."""
        values, body_rows, sealed, released = made
        _put_rows(db, job, values)
        if sealed:
            db.executemany(
                "INSERT OR REPLACE INTO body VALUES (?,?,?)",
                zip(repeat(job), body_rows, sealed, strict=False),
            )
        # Most jobs park no body: at most one probe a commit (when a row
        # settled for good), its bodies deleted only when the job has any. Inside the
        # write transaction, so no body can appear meanwhile.
        if released and db.execute("SELECT 1 FROM body WHERE job = ? LIMIT 1", (job,)).fetchone():
            db.executemany("DELETE FROM body WHERE job = ? AND row = ?", zip(repeat(job), released))

    def append(self, job: str, record: Record) -> int:
        """Store a new record under the job's next row number (taken inside
        the write transaction, so processes sharing the spool never collide);
        returns that row."""
        return self.append_many(job, [record])[0]

    def append_many(self, job: str, records: Sequence[Record]) -> list[int]:
        """:meth:`append` for several records, in one transaction."""
        with self._tx() as db:
            (top,) = db.execute("SELECT max(row) FROM rcpt WHERE job = ?", (job,)).fetchone()
            top = top or 0
            for record in records:
                top += 1
                record.row = top
                if record.message is not None:
                    record.message = msgspec.structs.replace(record.message, row=record.row)
            now = time.time()
            self._put(db, job, self._made(job, records, now, claimed=now + self.claim))
        return [r.row for r in records]

    def due(self, now: float, *, job: str | None = None, limit: int = 1000) -> list[Spooled]:
        sql = (
            "SELECT r.row, r.state, r.domain, r.attempts, r.first_at, r.next_at, r.code,"
            " r.category, r.updated, r.meta, b.data, r.job FROM rcpt r JOIN body b"
            " ON b.job = r.job AND b.row = r.row"
            " WHERE r.state IN ('deferred', 'pending') AND r.next_at <= ? AND r.claimed <= ?"
        )
        args: list[Any] = [now, now]
        if job is not None:
            sql += " AND r.job = ?"
            args.append(job)
        sql += " ORDER BY r.next_at LIMIT ?"
        args.append(limit)
        out: list[Spooled] = []
        with self._tx() as db:
            got = db.execute(sql, args).fetchall()
            # Claimed: not due again (for another runner) until CLAIM has passed.
            db.executemany(
                "UPDATE rcpt SET claimed = ? WHERE job = ? AND row = ?",
                [(now + self.claim, g[11], g[0]) for g in got],
            )
        for g in got:
            j = g[11]
            rec = self._record(j, g)
            msg = _msg_dec.decode(self.keys.open(g[10], _ctx(j, g[0], b"body")))
            out.append(Spooled(job=j, record=rec, message=msg))
        return out

    def extend_claim(self, job: str, rows: Iterable[int], until: float) -> None:
        """Keep messages this process is still trying claimed until ``until``."""
        with self._tx() as db:
            db.executemany(
                "UPDATE rcpt SET claimed = ? WHERE job = ? AND row = ?"
                " AND state IN ('pending', 'deferred') AND claimed < ?",
                [(until, job, r, until) for r in rows],
            )

    def sweep(self, before: float) -> tuple[int, int]:
        """Retention: settled records last changed before ``before`` lose
        their personal data. A job file's rows keep their row and state (a
        resumed job must still pass them over) but their address and reply
        are blanked; an engine's one-off sends have nothing to resume and go.
        Returns (anonymised, deleted)."""
        anonymised = deleted = 0
        for info in self.jobs():
            engine = info.source.startswith("engine:")
            last = 0
            while True:
                with self._tx() as db:
                    got = db.execute(_SWEEP_SELECT, (info.id, last, before)).fetchall()
                    if not got:
                        break
                    last = got[-1][0]
                    if engine:
                        db.executemany(
                            "DELETE FROM rcpt WHERE job = ? AND row = ?",
                            [(info.id, row) for row, _ in got],
                        )
                        deleted += len(got)
                        continue
                    blank = []
                    for row, meta in got:
                        ctx = _ctx(info.id, row, b"meta")
                        rcpt, mid, reply, enhanced = _meta_dec.decode(self.keys.open(meta, ctx))
                        if rcpt or reply:
                            plain = _meta_enc.encode(("", mid, "", enhanced))
                            blank.append((self.keys.seal(plain, ctx), info.id, row))
                    db.executemany("UPDATE rcpt SET meta = ? WHERE job = ? AND row = ?", blank)
                    anonymised += len(blank)
        return anonymised, deleted

    def person(
        self,
        match: Callable[[str], bool],
        *,
        erase: bool = False,
        correct: str | None = None,
    ) -> list[dict[str, Any]]:
        """One person's records (``match`` says which recipients are theirs),
        for an export; with ``erase`` their address and reply are blanked and
        a message still waiting is not sent (recorded failed, its bytes
        deleted); with ``correct`` the stored address becomes that one (a
        waiting message keeps the bytes it was signed with)."""
        found: list[dict[str, Any]] = []
        for info in self.jobs():
            last = 0
            while True:
                with self._tx() as db:
                    got = db.execute(
                        "SELECT row, state, updated, meta FROM rcpt WHERE job = ? AND row > ?"
                        " ORDER BY row LIMIT 1000",
                        (info.id, last),
                    ).fetchall()
                    if not got:
                        break
                    last = got[-1][0]
                    changed = []
                    for row, state, updated, meta in got:
                        ctx = _ctx(info.id, row, b"meta")
                        fields = _meta_dec.decode(self.keys.open(meta, ctx))
                        if not fields[0] or not match(fields[0]):
                            continue
                        doc, plain = person_record(
                            info.name, row, state, updated, fields, erase=erase, correct=correct
                        )
                        found.append(doc)
                        if plain is not None:
                            changed.append((self.keys.seal(plain, ctx), info.id, row, state))
                    db.executemany(
                        "UPDATE rcpt SET meta = ? WHERE job = ? AND row = ?",
                        [c[:3] for c in changed],
                    )
                    if erase:
                        waiting = [(c[1], c[2]) for c in changed if c[3] not in FINAL]
                        db.executemany(
                            "UPDATE rcpt SET state = 'failed', category = 'erased'"
                            " WHERE job = ? AND row = ?",
                            waiting,
                        )
                        db.executemany("DELETE FROM body WHERE job = ? AND row = ?", waiting)
        return found

    def release_claims(self, job: str) -> int:
        """Messages of ``job`` claimed by a runner that is gone are free at once
        (for a runner that knows it is the only one: claims otherwise run out)."""
        with self._tx() as db:
            return db.execute(
                "UPDATE rcpt INDEXED BY rcpt_job_due SET claimed = 0"
                " WHERE job = ? AND state IN ('deferred', 'pending') AND claimed > 0",
                (job,),
            ).rowcount

    def load(self, job: str, row: int) -> Record | None:
        got = self._q(
            "SELECT row, state, domain, attempts, first_at, next_at, code, category, updated,"
            " meta FROM rcpt WHERE job = ? AND row = ?",
            (job, row),
        )
        return self._record(job, got[0]) if got else None

    def message(self, job: str, row: int) -> RenderedMessage | None:
        got = self._q("SELECT data FROM body WHERE job = ? AND row = ?", (job, row))
        if not got:
            return None
        return _msg_dec.decode(self.keys.open(got[0][0], _ctx(job, row, b"body")))

    def records(
        self, job: str, *, states: Iterable[str] | None = None, limit: int = 100
    ) -> list[Record]:
        sql = (
            "SELECT row, state, domain, attempts, first_at, next_at, code, category, updated,"
            " meta FROM rcpt WHERE job = ?"
        )
        args: list[Any] = [job]
        wanted = list(states or ())
        if wanted:
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        sql += " ORDER BY row LIMIT ?"
        args.append(limit)
        return [self._record(job, g) for g in self._q(sql, args)]

    def counts(self, job: str) -> dict[str, int]:
        got = self._q("SELECT state, count(*) FROM rcpt WHERE job = ? GROUP BY state", (job,))
        return {s: n for s, n in got}

    def per_domain(self, job: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        got = self._q(
            "SELECT domain, state, count(*) FROM rcpt WHERE job = ? GROUP BY domain, state", (job,)
        )
        for domain, state, n in got:
            out.setdefault(domain, {})[state] = n
        return out

    def reasons(self, job: str) -> dict[str, dict[str, int]]:
        """Per state (bounced, failed, deferred), how many of each category."""
        out: dict[str, dict[str, int]] = {}
        got = self._q(
            "SELECT state, category, count(*) FROM rcpt WHERE job = ?"
            " AND state IN ('bounced', 'failed', 'deferred') GROUP BY state, category",
            (job,),
        )
        for state, category, n in got:
            out.setdefault(state, {})[category or "unknown"] = n
        return out

    def settled_times(self, job: str) -> list[tuple[float, str]]:
        """(when, state) of every settled record, oldest first (outcomes over time)."""
        return [
            (t, st)
            for t, st in self._q(
                "SELECT updated, state FROM rcpt WHERE job = ? AND state != 'pending'"
                " ORDER BY updated",
                (job,),
            )
        ]

    def next_due(self, job: str | None = None) -> float | None:
        # A job's waiting rows through its partial index: left to itself the
        # planner takes the primary key (job = ?) and reads every row the job
        # ever settled (4 ms for 30,000, at the end of every run and worker).
        sql = (
            _WAITING_JOB % "SELECT min(max(next_at, claimed))"
            if job
            else "SELECT min(max(next_at, claimed)) FROM rcpt"
            " WHERE state IN ('deferred', 'pending')"
        )
        got = self._q(sql, (job,) if job else ())
        return cast(float | None, got[0][0]) if got else None

    def make_due(self, *, job: str | None = None, rows: Iterable[int] | None = None) -> int:
        with self._tx() as db:
            if rows is not None:
                assert job is not None
                args = [(job, r) for r in rows]
                before = db.total_changes
                db.executemany(
                    "UPDATE rcpt SET next_at = 0 WHERE state = 'deferred' AND job = ? AND row = ?",
                    args,
                )
                return db.total_changes - before
            # Through the waiting rows' index, not every row ever settled: the
            # index's own term is repeated, as SQLite needs to use it.
            if job:
                return db.execute(
                    "UPDATE rcpt INDEXED BY rcpt_job_due SET next_at = 0 WHERE job = ?"
                    " AND state IN ('deferred', 'pending') AND state = 'deferred'",
                    (job,),
                ).rowcount
            return db.execute(
                "UPDATE rcpt INDEXED BY rcpt_due SET next_at = 0"
                " WHERE state IN ('deferred', 'pending') AND state = 'deferred'"
            ).rowcount

    def drop(self, *, job: str, rows: Iterable[int] | None = None) -> int:
        """Give up on deferred or pending messages: failed, their bytes deleted."""
        sql = (
            "UPDATE rcpt SET state = 'failed', category = 'dropped', next_at = 0, updated = ?"
            " WHERE job = ? AND state IN ('deferred', 'pending') AND claimed <= ?"
        )
        now = time.time()
        with self._tx() as db:
            if rows is None:
                # The whole job's waiting rows: through their index.
                every = sql.replace("UPDATE rcpt", "UPDATE rcpt INDEXED BY rcpt_job_due", 1)
                dropped = db.execute(every, (now, job, now)).rowcount
                db.execute(
                    "DELETE FROM body WHERE job = ? AND NOT EXISTS (SELECT 1 FROM rcpt WHERE"
                    " rcpt.job = body.job AND rcpt.row = body.row AND state IN"
                    " ('deferred', 'pending'))",
                    (job,),
                )
            else:
                wanted = [(job, r) for r in rows]
                before = db.total_changes
                db.executemany(sql + " AND row = ?", [(now, j, now, r) for j, r in wanted])
                dropped = db.total_changes - before
                db.executemany(
                    "DELETE FROM body WHERE job = ? AND row = ? AND NOT EXISTS (SELECT 1 FROM"
                    " rcpt WHERE rcpt.job = body.job AND rcpt.row = body.row AND state IN"
                    " ('deferred', 'pending'))",
                    wanted,
                )
            return dropped

    def reseal(self) -> int:
        """Seal every record again under the newest key (after a rotation)."""
        n = 0
        current = self.keys.current_id
        with self._tx() as db:
            # Table names are these two literals, never input.
            for table, column, part in (("rcpt", "meta", b"meta"), ("body", "data", b"body")):
                sealed = db.execute(f"SELECT job, row, {column} FROM {table}").fetchall()  # noqa: S608
                for job, row, blob in sealed:
                    if self.keys.key_id(blob) != current:
                        ctx = _ctx(job, row, part)
                        fresh = self.keys.seal(self.keys.open(blob, ctx), ctx)
                        db.execute(
                            f"UPDATE {table} SET {column} = ? WHERE job = ? AND row = ?",  # noqa: S608
                            (fresh, job, row),
                        )
                        n += 1
        return n

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> SQLiteSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
