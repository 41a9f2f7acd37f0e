"""The letters' states: one SQLite row a letter, its postal address sealed.

The address is kept only to deliver (a carrier may ask for it again, a
returned letter is matched to it) and is sealed with AES-256-GCM under the
store's key ring (the spool's :class:`SpoolKeys`), bound to the letter's
id. :meth:`LetterStore.sweep` deletes it ``retention_days`` after the
carrier confirmed delivery or after the letter ended otherwise, and
``max_age_days`` after it was recorded in any case; the row stays (id,
reference, status) for the job's report.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from mailsflux.errors import SpoolError
from mailsflux.letters.address import PostalAddress
from mailsflux.letters.carrier import FINAL
from mailsflux.spool import SpoolKeys

DAY = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS letters (
    letter_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    ref TEXT NOT NULL,
    carrier TEXT NOT NULL DEFAULT '',
    carrier_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    address BLOB,
    updated REAL NOT NULL,
    delivered_at REAL,
    created REAL,
    UNIQUE (job, ref)
)
"""


_SELECT = (
    "SELECT letter_id, job, ref, carrier, carrier_id, status, events, updated,"
    " delivered_at, address IS NOT NULL FROM letters "
)


class LetterRow(msgspec.Struct, frozen=True):
    letter_id: str
    job: str
    ref: str
    carrier: str
    carrier_id: str
    status: str
    #: Tracking events already turned into events (not sent twice).
    events: int
    updated: float
    delivered_at: float | None
    has_address: bool


def _ctx(letter_id: str) -> bytes:
    return f"letter-address\x00{letter_id}".encode()


class LetterStore:
    def __init__(
        self, folder: Path, keys: SpoolKeys, *, clock: Callable[[], float] = time.time
    ) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.db = sqlite3.connect(folder / "letters.sqlite", isolation_level=None)
            self.db.execute(_SCHEMA)
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(letters)")}
            if "created" not in cols:  # a store made before the column
                self.db.execute("ALTER TABLE letters ADD COLUMN created REAL")
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the letter store: {exc}", file=str(folder)) from None
        self.keys = keys
        self.clock = clock

    @classmethod
    def open(cls, folder: Path, key_file: Path, **kw: Callable[[], float]) -> LetterStore:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(folder, SpoolKeys.load(key_file), **kw)

    def close(self) -> None:
        self.db.close()

    def find(self, job: str, ref: str) -> LetterRow | None:
        rows = self._select("WHERE job = ? AND ref = ?", (job, ref))
        return next(rows, None)

    def rows(self, job: str) -> list[LetterRow]:
        return list(self._select("WHERE job = ? ORDER BY rowid", (job,)))

    def _select(self, where: str, args: tuple[object, ...]) -> Iterator[LetterRow]:
        # ``where`` is one of this class's own clauses, never outside text.
        sql = _SELECT + where
        cur = self.db.execute(sql, args)
        for r in cur:
            yield LetterRow(
                letter_id=r[0], job=r[1], ref=r[2], carrier=r[3], carrier_id=r[4],
                status=r[5], events=r[6], updated=r[7], delivered_at=r[8], has_address=bool(r[9]),
            )  # fmt: skip

    def new_id(self) -> str:
        return f"ltr_{uuid.uuid4().hex}"

    def add(self, letter_id: str, job: str, ref: str, address: PostalAddress, carrier: str) -> None:
        """A letter about to be handed over (status ``pending`` until it is)."""
        sealed = self.keys.seal(msgspec.json.encode(address), _ctx(letter_id))
        self.db.execute(
            "INSERT INTO letters (letter_id, job, ref, carrier, status, address, updated, created)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (letter_id, job, ref, carrier, sealed, self.clock(), self.clock()),
        )

    def address(self, letter_id: str) -> PostalAddress | None:
        row = self.db.execute(
            "SELECT address FROM letters WHERE letter_id = ?", (letter_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return msgspec.json.decode(self.keys.open(row[0], _ctx(letter_id)), type=PostalAddress)

    def erase(self, letter_id: str) -> bool:
        """Delete the letter's postal address now (a person's erasure request,
        or no more need for it); the row stays for the job's report. False
        when none was held (deleted already)."""
        cur = self.db.execute(
            "UPDATE letters SET address = NULL WHERE letter_id = ? AND address IS NOT NULL",
            (letter_id,),
        )
        return cur.rowcount == 1

    def submitted(self, letter_id: str, carrier_id: str) -> None:
        self.db.execute(
            "UPDATE letters SET carrier_id = ?, status = 'submitted', events = 0, updated = ?"
            " WHERE letter_id = ?",
            (carrier_id, self.clock(), letter_id),
        )

    def failed(self, letter_id: str) -> None:
        self.db.execute(
            "UPDATE letters SET status = 'failed', updated = ? WHERE letter_id = ?",
            (self.clock(), letter_id),
        )

    def advance(self, letter_id: str, status: str, events: int, at: float) -> None:
        """The carrier's latest status; ``delivered`` starts the retention
        clock (at the carrier's time of it, the first time only)."""
        self.db.execute(
            "UPDATE letters SET status = ?, events = ?, updated = ?,"
            " delivered_at = CASE WHEN ? = 'delivered' AND delivered_at IS NULL THEN ?"
            " ELSE delivered_at END"
            " WHERE letter_id = ?",
            (status, events, self.clock(), status, at, letter_id),
        )

    def open_letters(self, job: str | None = None) -> list[LetterRow]:
        """Letters handed over and not settled (of ``job``, else of every job).

        A delivered letter whose address is still kept is asked about too: it
        may come back (``returned`` after ``delivered``)."""
        rows = self.rows(job) if job is not None else list(self._select("ORDER BY rowid", ()))
        return [
            r
            for r in rows
            if r.carrier_id
            and (r.status not in FINAL or (r.status == "delivered" and r.has_address))
        ]

    def sweep(
        self,
        retention_days: float = 30.0,
        now: float | None = None,
        *,
        max_age_days: float = 180.0,
    ) -> int:
        """Delete the addresses that are kept no longer: ``retention_days``
        after the carrier's delivery, ``retention_days`` after a letter ended
        otherwise (returned, cancelled, failed: by our clock when we learnt
        it), and ``max_age_days`` after a letter was recorded whatever its
        state (pending, submitted, stuck in transit)."""
        at = self.clock() if now is None else now
        cutoff = at - retention_days * DAY
        oldest = at - max_age_days * DAY
        cur = self.db.execute(
            "UPDATE letters SET address = NULL WHERE address IS NOT NULL AND ("
            " (status = 'delivered' AND delivered_at IS NOT NULL AND delivered_at <= ?)"
            " OR (status IN ('returned', 'cancelled', 'failed') AND updated <= ?)"
            " OR COALESCE(created, updated) <= ?)",
            (cutoff, cutoff, oldest),
        )
        return cur.rowcount
