"""``Engine(redis=URL)``: one-off messages (``send``, ``enqueue``) for Redis workers.

Each engine config has one long-lived prepared job in Redis (its id from
the config, as the local spool's engine job is), its *outbox*: a message
composed and signed by the engine is appended to its stream (rows from the
job's ``seq``; messages asked for in one loop turn share one ``XADD``) and
acknowledged once Redis has it. The job never ends while an engine uses
it (leaving marks it ended, the next engine opens it again), so workers
keep taking from it. Workers announce each row that became
final on the job's ``res`` stream; the engine reads it with its own
consumer group and hands each result on as a local send's, so a result
reaches the engine once, also across engine restarts (one that crashed
between handing a result on and acknowledging it hands it on again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import redis

from mailsflux.errors import SpoolError
from mailsflux.jobs.redis_batches import RESULTS, BatchWriter
from mailsflux.jobs.worker import ensure_group, result_of
from mailsflux.masking import log_text
from mailsflux.spool.redis_spool import RedisSpool
from mailsflux.spool.store import FINAL
from mailsflux.types import RenderedMessage

if TYPE_CHECKING:
    from mailsflux.engine.engine import Engine

#: The consumer group (and consumer) engines read an outbox's results in.
READERS: Final = "e"


class Outbox:
    """An engine's outbox job in Redis (blocking calls are short: one round trip)."""

    def __init__(self, engine: Engine) -> None:
        config = engine.config
        origin = engine.origin
        where = f"{config.name}\x00{origin}"
        job_id = "outbox-" + hashlib.sha256(where.encode()).hexdigest()[:16]
        self.spool = RedisSpool(
            engine.redis or "", prefix=engine.redis_prefix, key_file=engine.key_file
        )
        try:
            self.writer = BatchWriter(
                self.spool, config.name, origin, config.delivery, job_id=job_id
            )
            self.writer.reopen()
            ensure_group(self.spool, job_id)
            self.results = self.spool.key(job_id, RESULTS)
            try:
                self.spool.client.xgroup_create(self.results, READERS, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # else made by an earlier engine
                    raise SpoolError(f"cannot create the results' group: {exc}") from None
            except (redis.RedisError, OSError) as exc:
                raise SpoolError(f"spool write failed (Redis): {exc}") from None
        except BaseException:
            self.spool.close()
            raise
        self.engine = engine
        self.id = job_id

    def hold_many(self, msgs: Sequence[RenderedMessage]) -> list[RenderedMessage]:
        return self.writer.add(msgs)

    def _read(self, since: str) -> list[tuple[str, list[int]]]:
        got: Any = self.spool.client.xreadgroup(
            READERS, READERS, {self.results: since}, count=100, block=500 if since == ">" else None
        )
        out = []
        for _, entries in got or []:
            for eid, fields in entries:
                rows = (fields.get(b"rows") or b"").decode()
                out.append((eid.decode(), [int(r) for r in rows.split(",") if r]))
        return out

    async def follow(self) -> None:
        """Hand on every result the workers announce, until cancelled: first
        those an earlier engine read and did not acknowledge, then new ones.

        An entry is acknowledged only once every row in it was handed on: a
        row sealed with a key this host lacks (a key file lagging a rotation)
        leaves its entry pending, read again (``since="0"``) after a pause,
        and so does an entry read just before Redis failed. ``handed`` keeps
        a re-read from handing a result on twice."""
        since = "0"
        failing = False
        handed: set[int] = set()
        while True:
            try:
                entries = await asyncio.to_thread(self._read, since)
                if since == "0" and not entries:
                    since = ">"
                    continue
                rows = sorted({r for _, rs in entries for r in rs} - handed)
                later: set[int] = set()
                recs = await asyncio.to_thread(self.spool.opened, self.id, rows, later)
                for rec in recs:
                    if rec.state in FINAL and rec.row not in handed:
                        handed.add(rec.row)
                        self.engine._delivered_row(result_of(rec))
                done = [e for e, rs in entries if not later.intersection(rs)]
                if done:
                    pipe = self.spool.client.pipeline(transaction=True)
                    pipe.xack(self.results, READERS, *done)
                    pipe.xdel(self.results, *done)
                    await asyncio.to_thread(pipe.execute)
                    handed.difference_update(r for e, rs in entries if e in done for r in rs)
                if later:
                    # Waiting for a key: read the pending entries again later.
                    since = "0"
                    await asyncio.sleep(1.0)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: results wait there; try again
                since = "0"  # what was read but not acknowledged is pending: read it again
                if not failing:
                    print(
                        log_text(f"mailsflux: reading results from Redis: {exc}"), file=sys.stderr
                    )
                failing = True
                await asyncio.sleep(0.5)

    def close(self) -> None:
        """Leaving: the job is ended for now (``worker --until-idle`` may stop
        once it is drained); the next engine of this config opens it again."""
        try:
            with contextlib.suppress(redis.RedisError, OSError):
                self.spool.client.set(self.spool.key(self.id, "end"), 1)
        finally:
            self.spool.close()


__all__ = ["Outbox"]
