"""The spool in Redis: many worker processes, on many hosts, share one send.

Every key of a job carries the job's hash tag, ``PREFIX:{JOB}:...``, so a
job lives on one Redis Cluster slot and every script below touches keys of
one slot. Per job:

``info``   the :class:`JobInfo` (JSON)
``st``     hash row -> ``state<US>domain`` (what counts and resumes read)
``rec``    hash row -> the rest of the record (msgpack; addresses and
           replies sealed, as on disk)
``n``      hash state -> rows; ``dom``: ``domain<US>state`` -> rows
``body``   hash row -> the sealed message, while it is still to be tried
``due``    sorted set row -> next attempt; ``claim``: row -> claimed until
``seq``    row numbers for messages appended one at a time
``q``      the stream of recipient batches (consumer group ``w``), and
``enq``    the last row put into it, ``end`` once all are (:mod:`mailsflux.jobs.worker`)
``res``    a prepared job's stream of rows that became final, for its submitter
``spec``   a prepared job's delivery settings, sealed (:mod:`mailsflux.jobs.redis_batches`)
``quar``   hash what -> (when, why, first row, the sealed bytes, rows): batches
           and deferred messages that do not authenticate (altered bytes), set
           aside instead of stopping a worker or being retried; a batch's rows
           count ``quarantined`` in ``n``. A key this host lacks is no damage:
           such records wait (pending, due) for a host that holds it
``fin``    list of the rows given a final state, in order: what a follower
           reads on from where it stopped (a row may appear twice)

and ``PREFIX:jobs``, the set of job ids, outside any job's slot.

Records are sealed with the same AES-256-GCM key ring as the embedded
spool (:mod:`mailsflux.spool.keys`), with the same associated data (job and
row), so Redis never holds an address or a message in plain text. Every
host needs the same key file: ``PREFIX:kid`` names the key the first
writer sealed with, and a host whose file lacks it is told so at once.

Writes go through Lua scripts (one round trip, atomic), reads through
pipelines. Any Redis failure raises :class:`~mailsflux.errors.SpoolError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from mailsflux._redis import masked, scrubbed, sync_client, url_problem
from mailsflux.errors import SpoolError
from mailsflux.spool.keys import SpoolKeys, UnknownKeyError
from mailsflux.spool.sqlite import CLAIM, _ctx, _meta_dec, _meta_enc
from mailsflux.spool.store import FINAL, JobInfo, Record, Spooled, State
from mailsflux.types import RenderedMessage

_US: Final = "\x1f"

#: KEYS: st rec n dom body due claim fin. ARGV: what :func:`store_args`
#: makes of a call's records: 13 lengths, then the parts they measure.
#:
#: A few variadic commands a call, not nine a row, and next to no work a row
#: in Lua: Redis is the one part every worker sharing a send shares, so its
#: CPU a message bounds them all (each command also goes to the AOF). The
#: caller works out what the rows leave (the same as writing them one by one,
#: in order); here only what needs Redis's own data: the states the rows had
#: before (their counts go down) and whether a row still waiting has a body
#: (then it is due again).
STORE_LUA: Final = """
local len = {}
for i = 1, 13 do len[i] = tonumber(ARGV[i]) end
local at = 14
local function part(k)
  local a = at
  at = at + len[k]
  return a, at - 1
end
-- unpack() gives at most ~8000 values (Lua's C stack): long parts go in
-- pieces of 4000, an even number, so no pair is split.
local function each(cmd, key, a, b)
  for i = a, b, 4000 do
    redis.call(cmd, key, unpack(ARGV, i, math.min(i + 3999, b)))
  end
end
local rows_a, rows_b = part(1)
local sums, order, known = {{}, {}}, {{}, {}}, {{}, {}}
for k = 1, 2 do
  local a, b = part(k + 1)
  for i = a, b, 2 do
    sums[k][ARGV[i]] = tonumber(ARGV[i + 1])
    order[k][#order[k] + 1] = ARGV[i]
  end
end
local function down(k, f)
  if sums[k][f] == nil then
    sums[k][f] = 0
    order[k][#order[k] + 1] = f
  end
  sums[k][f] = sums[k][f] - 1
  known[k][f] = true
end
for i = rows_a, rows_b, 4000 do
  local olds = redis.call('HMGET', KEYS[1], unpack(ARGV, i, math.min(i + 3999, rows_b)))
  for _, old in ipairs(olds) do
    if old then
      local ost, od = string.match(old, '^([^\\31]*)\\31(.*)$')
      down(1, ost)
      down(2, od .. '\\31' .. ost)
    end
  end
end
-- A field whose sum is 0 is left alone only when it surely exists: it
-- counts a state a row had before this call (counts are deleted only with
-- the job). Otherwise HINCRBY 0 creates it, as the +1 and -1 one by one did.
for k, key in ipairs({KEYS[3], KEYS[4]}) do
  for _, f in ipairs(order[k]) do
    if sums[k][f] ~= 0 or not known[k][f] then redis.call('HINCRBY', key, f, sums[k][f]) end
  end
end
for k, how in ipairs({
  {'HSET', KEYS[1]}, {'HSET', KEYS[2]}, {'RPUSH', KEYS[8]}, {'HSET', KEYS[5]},
  {'HDEL', KEYS[5]}, {'ZADD', KEYS[6]}, {'ZREM', KEYS[6]}, {'ZADD', KEYS[7]},
  {'ZREM', KEYS[7]},
}) do
  local a, b = part(k + 3)
  each(how[1], how[2], a, b)
end
local a, b = part(13)
local due = {}
for i = a, b, 2 do
  if redis.call('HEXISTS', KEYS[5], ARGV[i + 1]) == 1 then
    due[#due + 1] = ARGV[i]
    due[#due + 1] = ARGV[i + 1]
  end
end
for i = 1, #due, 4000 do
  redis.call('ZADD', KEYS[6], unpack(due, i, math.min(i + 3999, #due)))
end
return 1
"""

#: A record as :data:`STORE_LUA` takes it: row, state, domain, the sealed
#: record, the sealed body (empty: none), next attempt.
StoreRow = tuple[int, str, str, bytes, bytes, str]

_GONE: Final = object()


def store_args(claim: float, rows: Sequence[StoreRow]) -> list[Any]:
    """ARGV of :data:`STORE_LUA` for ``rows`` written in order, with claims
    until ``claim`` (0: none) on those left waiting. What the rows leave is
    worked out here, in the process that writes them, not in Redis."""
    first: dict[int, None] = {}
    now: dict[int, str] = {}  # row -> its state<US>domain as this call leaves it
    sums: tuple[dict[str, int], dict[str, int]] = ({}, {})

    def count(value: str, by: int) -> None:
        state, _, domain = value.partition(_US)
        for k, f in ((0, state), (1, domain + _US + state)):
            sums[k][f] = sums[k].get(f, 0) + by

    st: list[Any] = []
    rec: list[Any] = []
    fin: list[int] = []
    # row -> what it leaves: a value, or _GONE (removed). A waiting row with
    # no body, whose body this call did not touch, is due again only if
    # Redis holds a body for it (asked there: ``maybe``).
    body: dict[int, object] = {}
    due: dict[int, object] = {}
    maybe: dict[int, str] = {}
    hold: dict[int, object] = {}
    for row, state, domain, blob, sealed, next_at in rows:
        value = state + _US + domain
        if row in now:
            count(now[row], -1)  # the state it was given earlier in this call
        else:
            first[row] = None  # its state before the call: Redis knows
        now[row] = value
        count(value, 1)
        st += (row, value)
        rec += (row, blob)
        final = state not in ("pending", "deferred")
        if final:
            fin.append(row)
        if sealed:
            body[row], due[row] = sealed, next_at
            maybe.pop(row, None)
        elif final:
            body[row] = due[row] = _GONE
            maybe.pop(row, None)
        elif row in body:
            if body[row] is not _GONE:
                due[row] = next_at
        else:
            maybe[row] = next_at
            due.pop(row, None)
        hold[row] = claim if claim > 0 and not final else _GONE

    def split(left: dict[int, object], value_first: bool) -> tuple[list[Any], list[int]]:
        put: list[Any] = []
        gone: list[int] = []
        for row, v in left.items():
            if v is _GONE:
                gone.append(row)
            else:
                put += (v, row) if value_first else (row, v)
        return put, gone

    body_put, body_gone = split(body, False)
    due_put, due_gone = split(due, True)
    hold_put, hold_gone = split(hold, True)
    counts = [[x for f, n in s.items() for x in (f, n)] for s in sums]
    check = [x for row, at in maybe.items() for x in (at, row)]
    parts: list[list[Any]] = [
        list(first), *counts, st, rec, fin, body_put, body_gone,
        due_put, due_gone, hold_put, hold_gone, check,
    ]  # fmt: skip
    return [len(p) for p in parts] + [x for p in parts for x in p]


#: KEYS: due claim. ARGV: now, limit, claim until. Returns the rows claimed, oldest first.
#: Due rows are read a page at a time, not all at once (a big deferred
#: domain coming due is many thousands, of which one call takes ``limit``),
#: their claims one ZMSCORE a page, and claimed with one ZADD.
DUE_LUA: Final = """
local now, limit, till = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out, claims = {}, {}
local at, full = 0, false
while not full do
  local page = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', at, 500)
  if #page == 0 then break end
  local held = redis.call('ZMSCORE', KEYS[2], unpack(page))
  for j, row in ipairs(page) do
    local c = held[j]
    if not c or tonumber(c) <= now then
      out[#out + 1] = row
      claims[#claims + 1] = till
      claims[#claims + 1] = row
      full = #out >= limit
      if full then break end
    end
  end
  at = at + #page
end
for i = 1, #claims, 4000 do
  redis.call('ZADD', KEYS[2], unpack(claims, i, math.min(i + 3999, #claims)))
end
return out
"""

#: KEYS: st claim. ARGV: until, rows... Renews claims on rows still waiting.
EXTEND_LUA: Final = """
local till = tonumber(ARGV[1])
for i = 2, #ARGV do
  local s = redis.call('HGET', KEYS[1], ARGV[i])
  if s and (string.sub(s, 1, 8) == 'pending\\31' or string.sub(s, 1, 9) == 'deferred\\31') then
    local c = redis.call('ZSCORE', KEYS[2], ARGV[i])
    if not c or tonumber(c) < till then redis.call('ZADD', KEYS[2], till, ARGV[i]) end
  end
end
return 1
"""

#: KEYS: due claim. The earliest moment a waiting row can be taken: rows in
#: order of next attempt, until no later one can come sooner (its claim aside).
NEXT_LUA: Final = """
local best = false
local i = 0
while true do
  local got = redis.call('ZRANGE', KEYS[1], i, i + 99, 'WITHSCORES')
  if #got == 0 then break end
  for j = 1, #got, 2 do
    local t = tonumber(got[j + 1])
    if best and t >= best then return tostring(best) end
    local c = redis.call('ZSCORE', KEYS[2], got[j])
    if c and tonumber(c) > t then t = tonumber(c) end
    if not best or t < best then best = t end
  end
  i = i + 100
end
if best then return tostring(best) end
return false
"""

#: KEYS: st n dom body due claim fin. ARGV: now, rows... (none: all waiting).
#: Gives up on waiting rows not claimed now: failed; returns them.
DROP_LUA: Final = """
local now = tonumber(ARGV[1])
local rows = {}
if #ARGV > 1 then
  for i = 2, #ARGV do rows[#rows + 1] = ARGV[i] end
else
  rows = redis.call('ZRANGE', KEYS[5], 0, -1)
end
local out = {}
for _, row in ipairs(rows) do
  local s = redis.call('HGET', KEYS[1], row)
  local c = redis.call('ZSCORE', KEYS[6], row)
  if s and (not c or tonumber(c) <= now) then
    local ost, od = string.match(s, '^([^\\31]*)\\31(.*)$')
    if ost == 'pending' or ost == 'deferred' then
      redis.call('HSET', KEYS[1], row, 'failed\\31' .. od)
      redis.call('HINCRBY', KEYS[2], ost, -1)
      redis.call('HINCRBY', KEYS[2], 'failed', 1)
      redis.call('HINCRBY', KEYS[3], od .. '\\31' .. ost, -1)
      redis.call('HINCRBY', KEYS[3], od .. '\\31failed', 1)
      redis.call('HDEL', KEYS[4], row)
      redis.call('ZREM', KEYS[5], row)
      redis.call('ZREM', KEYS[6], row)
      redis.call('RPUSH', KEYS[7], row)
      out[#out + 1] = row
    end
  end
end
return out
"""

#: What ``rec`` holds beside ``st`` and ``due``: attempts, first_at, code,
#: category, updated, and the sealed (recipient, message id, reply, enhanced status).
_Rec = tuple[int, float, int | None, str, float, bytes]
_rec_dec = msgspec.msgpack.Decoder(_Rec)
_msg_dec = msgspec.msgpack.Decoder(RenderedMessage)
_info_dec = msgspec.json.Decoder(JobInfo)
_PARTS: Final = (
    "info", "st", "rec", "n", "dom", "body", "due", "claim", "seq", "q", "enq", "end", "quar",
    "spec", "res", "fin", "feed", "feeder",
)  # fmt: skip
_quar_enc = msgspec.msgpack.Encoder()
_quar_dec = msgspec.msgpack.Decoder(list[Any])  # (when, why, first, sealed[, rows])

#: KEYS: quar n. ARGV: what, entry, rows. Counted once however often it is set aside.
QUAR_LUA: Final = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 and tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'quarantined', ARGV[3])
end
return 1
"""
#: What cannot be opened: a key the ring lacks, a damaged or altered record.
UNREADABLE: Final = (SpoolError, msgspec.DecodeError, KeyError, ValueError)


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client for ``url`` with short timeouts and a few quick retries: one
    server, a Cluster or Sentinel's master, as the URL says (:mod:`mailsflux._redis`)."""
    try:
        client: redis.Redis = sync_client(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
        )
        return client
    except ValueError as exc:
        raise SpoolError(url_problem(url, exc), field="--redis") from None
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        # A Cluster client asks a node for the slots at once; the others connect later.
        raise SpoolError(
            f"cannot reach Redis at {masked(url)}: {scrubbed(url, exc)}", field="--redis"
        ) from None


class FinalsCursor:
    """Where :meth:`RedisSpool.finals` goes on reading a job's settled rows."""

    def __init__(self) -> None:
        self.at = 0
        self.seen: set[int] = set()
        #: Rows whose record waits for a key this host lacks.
        self.later: set[int] = set()


class RedisSpool:
    """:class:`~mailsflux.spool.Spool` in Redis (one server, Sentinel's master, or a Cluster).

    ``url_or_client``: a ``redis://`` (``rediss://``, ``unix://``) URL, or a
    client (left open by :meth:`close`). ``prefix`` starts every key.
    ``key_file``: the spool key ring (default: ``keys`` in the default spool
    directory); created only when ``create_key`` and it is missing.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        prefix: str = "mf",
        keys: SpoolKeys | None = None,
        key_file: str | Path | None = None,
        create_key: bool = True,
        claim: float = CLAIM,
    ) -> None:
        self.owned = isinstance(url_or_client, str)
        self.client: redis.Redis = (
            connect(url_or_client) if isinstance(url_or_client, str) else url_or_client
        )
        self.url = url_or_client if isinstance(url_or_client, str) else ""
        self.prefix = prefix
        self.claim = claim
        if keys is None:
            from mailsflux.spool import default_spool_dir

            path = Path(key_file) if key_file else default_spool_dir() / "keys"
            keys = SpoolKeys.load(path, create=create_key)
        self.keys = keys
        #: Where ``status`` says the spool is.
        self.directory = f"redis {self.url or 'client'} prefix {prefix}"
        c = self.client
        self._store = c.register_script(STORE_LUA)
        self._due = c.register_script(DUE_LUA)
        self._extend = c.register_script(EXTEND_LUA)
        self._next = c.register_script(NEXT_LUA)
        self._drop = c.register_script(DROP_LUA)
        self._quar = c.register_script(QUAR_LUA)
        self._keys_checked = False
        #: Told once per key id that records wait for a key this host lacks.
        self.on_missing_key: Callable[[str], None] | None = None
        self._missing: set[str] = set()

    # -- plumbing -------------------------------------------------------------

    def key(self, job: str, part: str) -> str:
        """A key of ``job``: every one carries the hash tag ``{job}``."""
        return f"{self.prefix}:{{{job}}}:{part}"

    def _do(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (redis.RedisError, OSError) as exc:
            raise SpoolError(f"spool {what} failed (Redis): {exc}") from None

    def check_keys(self) -> None:
        """Records of one spool open on every host: the hosts share one key file."""
        if self._keys_checked:
            return
        kid_key = f"{self.prefix}:kid"
        self._do("write", self.client.set, kid_key, self.keys.current_id, nx=True)
        kid = self._do("read", self.client.get, kid_key)
        if kid is not None and kid.decode() not in self.keys.ids:
            raise SpoolError(
                f"the spool in Redis is sealed with key {kid.decode()}, which this host's key"
                " file does not hold: copy the key file from the host that first wrote it",
                file=str(self.keys.path) if self.keys.path else None,
            )
        self._keys_checked = True

    def _seal_rec(self, job: str, r: Record) -> bytes:
        meta = _meta_enc.encode((r.recipient, r.message_id, r.reply, r.enhanced_status))
        sealed = self.keys.seal(meta, _ctx(job, r.row, b"meta"))
        return msgspec.msgpack.encode(
            (r.attempts, r.first_at, r.code, r.category, r.updated, sealed)
        )

    def _record(self, job: str, row: int, st: bytes, blob: bytes, next_at: float | None) -> Record:
        state, _, domain = st.decode().partition(_US)
        attempts, first_at, code, category, updated, sealed = _rec_dec.decode(blob)
        rcpt, mid, reply, enhanced = _meta_dec.decode(
            self.keys.open(sealed, _ctx(job, row, b"meta"))
        )
        return Record(
            row=row,
            state=state,  # type: ignore[arg-type]
            recipient=rcpt,
            message_id=mid,
            domain=domain,
            attempts=attempts,
            first_at=first_at,
            next_at=next_at or 0.0,
            code=code,
            enhanced_status=enhanced,
            reply=reply,
            category=category,
            updated=updated,
        )

    def _put_info(self, info: JobInfo) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.key(info.id, "info"), msgspec.json.encode(info))
        pipe.sadd(f"{self.prefix}:jobs", info.id)
        self._do("write", pipe.execute)

    # -- jobs -----------------------------------------------------------------

    def begin_job(self, info: JobInfo, *, restart: bool = False, joining: bool = False) -> JobInfo:
        """Start or resume a job. A job already running in Redis is joined
        (many processes share it), never refused."""
        self.check_keys()
        now = time.time()
        old = self.job(info.id)
        if restart and old is not None:
            waiting = self._do("read", self.client.zcard, self.key(info.id, "due"))
            if waiting:
                raise SpoolError(
                    f"job {old.name!r} still has {waiting} deferred messages in the spool:"
                    " --restart would forget them. Let them finish, or give them up first"
                )
            self.forget(info.id)
            old = None
        if old is not None:
            if old.fingerprint != info.fingerprint:
                raise SpoolError(
                    f"job {old.name!r} is in the spool and its recipients have changed since"
                    f" ({old.source}): resuming would mix two lists. Restore the file, or"
                    " start the job over with --restart"
                )
            info = old
        else:
            info.created = now
        if not joining:
            counts = self.counts(info.id)
            settled = sum(n for s, n in counts.items() if s != "pending")
            if info.state != "running" or not info.run_started:
                info.run_started, info.run_base = now, settled
            info.state = "running"
        info.updated = now
        self._put_info(info)
        return info

    def _update_info(self, job: str, **changes: Any) -> None:
        info = self.job(job)
        if info is not None:
            for k, v in changes.items():
                setattr(info, k, v)
            info.updated = time.time()
            self._put_info(info)

    def set_total(self, job: str, total: int) -> None:
        self._update_info(job, total=total)

    def end_job(self, job: str, state: str) -> None:
        self._update_info(job, state=state, pid=0)

    def forget(self, job: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        for p in _PARTS:  # one by one: a Cluster pipeline deletes one key a command
            pipe.delete(self.key(job, p))
        pipe.srem(f"{self.prefix}:jobs", job)
        self._do("write", pipe.execute)

    def job(self, job: str) -> JobInfo | None:
        got = self._do("read", self.client.get, self.key(job, "info"))
        return _info_dec.decode(got) if got is not None else None

    def jobs(self) -> list[JobInfo]:
        ids = sorted(i.decode() for i in self._do("read", self.client.smembers, self._jobs_key))
        infos = [i for i in (self.job(j) for j in ids) if i is not None]
        return sorted(infos, key=lambda i: i.created)

    @property
    def _jobs_key(self) -> str:
        return f"{self.prefix}:jobs"

    def settled_rows(self, job: str) -> bytearray:
        got = self._do("read", self.client.hgetall, self.key(job, "st"))
        rows = [int(r) for r, s in got.items() if not s.startswith(b"pending" + _US.encode())]
        bits = bytearray((max(rows, default=0) >> 3) + 1)
        for r in rows:
            bits[r >> 3] |= 1 << (r & 7)
        return bits

    def states(self, job: str, rows: Sequence[int]) -> list[str | None]:
        """Each row's state (None: none yet), in one round trip."""
        if not rows:
            return []
        got = self._do("read", self.client.hmget, self.key(job, "st"), list(rows))
        return [g.decode().partition(_US)[0] if g is not None else None for g in got]

    # -- records --------------------------------------------------------------

    def _keys7(self, job: str) -> list[str]:
        return [self.key(job, p) for p in ("st", "rec", "n", "dom", "body", "due", "claim", "fin")]

    def store(self, job: str, records: Sequence[Record]) -> None:
        if records:
            self._write(job, records, 0.0)

    def _write(self, job: str, records: Sequence[Record], claim: float) -> None:
        now = time.time()
        rows: list[StoreRow] = []
        seal = self.keys.seal
        for r in records:
            if not r.updated:
                r.updated = now
            body = b""
            if r.message is not None and r.state not in FINAL:
                plain = msgspec.msgpack.encode(r.message)
                body = seal(plain, _ctx(job, r.row, b"body"))
            rows.append((r.row, r.state, r.domain, self._seal_rec(job, r), body, repr(r.next_at)))
        args = store_args(claim, rows)
        self._do("write", self._store, keys=self._keys7(job), args=args)

    def append(self, job: str, record: Record) -> int:
        return self.append_many(job, [record])[0]

    def append_many(self, job: str, records: Sequence[Record]) -> list[int]:
        if not records:
            return []
        top = int(self._do("write", self.client.incrby, self.key(job, "seq"), len(records)))
        for i, record in enumerate(records):
            record.row = top - len(records) + 1 + i
            if record.message is not None:
                record.message = msgspec.structs.replace(record.message, row=record.row)
        self._write(job, records, time.time() + self.claim)
        return [r.row for r in records]

    def _read(self, job: str, rows: Sequence[int], bodies: bool) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.key(job, "st"), list(rows))
        pipe.hmget(self.key(job, "rec"), list(rows))
        pipe.zmscore(self.key(job, "due"), [str(r) for r in rows])
        if bodies:
            pipe.hmget(self.key(job, "body"), list(rows))
        return list(self._do("read", pipe.execute))

    def due(self, now: float, *, job: str | None = None, limit: int = 1000) -> list[Spooled]:
        out: list[Spooled] = []
        for j in [job] if job is not None else [i.id for i in self.jobs()]:
            if len(out) >= limit:
                break
            got = self._do(
                "write",
                self._due,
                keys=[self.key(j, "due"), self.key(j, "claim")],
                args=[repr(now), limit - len(out), repr(now + self.claim)],
            )
            rows = [int(r) for r in got]
            if not rows:
                continue
            sts, recs, nexts, bodies = self._read(j, rows, True)
            for row, st, blob, nxt, body in zip(rows, sts, recs, nexts, bodies, strict=True):
                if st is None or blob is None or body is None:
                    continue  # settled by another process between the two reads
                try:
                    rec = self._record(j, row, st, blob, nxt)
                    msg = _msg_dec.decode(self.keys.open(body, _ctx(j, row, b"body")))
                except UnknownKeyError as exc:
                    # A key file lagging a rotation: due again in a minute,
                    # here (the file read again) or on another host.
                    self.missing_key(exc)
                    self._do("write", self.client.zadd, self.key(j, "claim"), {row: now + 60})
                    continue
                except UNREADABLE as exc:
                    self._set_aside_row(j, row, body, exc)
                    continue
                out.append(Spooled(job=j, record=rec, message=msg))
        return out

    # -- quarantine -----------------------------------------------------------

    def missing_key(self, exc: UnknownKeyError) -> None:
        """Records wait for key ``exc.kid``: said once per key id."""
        if exc.kid in self._missing:
            return
        self._missing.add(exc.kid)
        if self.on_missing_key is not None:
            where = f" ({self.keys.path})" if self.keys.path else ""
            self.on_missing_key(
                f"records sealed with key {exc.kid} wait: this host's key file{where} lacks it;"
                " copy the key file from the host that rotated (it is read again on its own)"
            )

    def quarantine(
        self, job: str, what: str, why: str, first: int, sealed: bytes, rows: int = 0
    ) -> None:
        """Set ``sealed`` aside under ``what`` (still sealed: nothing is opened
        to keep it); its ``rows`` count ``quarantined`` (once)."""
        entry = _quar_enc.encode((time.time(), why, first, sealed, rows))
        self._do(
            "write",
            self._quar,
            keys=[self.key(job, "quar"), self.key(job, "n")],
            args=[what, entry, rows],
        )

    def quarantined(self, job: str) -> dict[str, tuple[float, str, int, int]]:
        """What was set aside: ``what`` -> (when, why, first row, rows)."""
        got = self._do("read", self.client.hgetall, self.key(job, "quar"))
        out = {}
        for what, entry in got.items():
            when, why, first, _, *rest = _quar_dec.decode(entry)
            out[what.decode()] = (float(when), str(why), int(first), int(rest[0]) if rest else 0)
        return out

    def _set_aside_row(self, job: str, row: int, body: bytes, exc: Exception) -> None:
        """A deferred message that does not authenticate would come due again
        and again: it is set aside and its row recorded failed (``dropped``)."""
        self.quarantine(job, f"row:{row}", str(exc) or type(exc).__name__, row, body)
        self._do("write", self.client.zrem, self.key(job, "claim"), row)
        self.drop(job=job, rows=[row])

    def extend_claim(self, job: str, rows: Iterable[int], until: float) -> None:
        args = [repr(until), *rows]
        if len(args) > 1:
            self._do(
                "write",
                self._extend,
                keys=[self.key(job, "st"), self.key(job, "claim")],
                args=args,
            )

    def release_claims(self, job: str) -> int:
        key = self.key(job, "claim")
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(key)
        pipe.delete(key)
        n, _ = self._do("write", pipe.execute)
        return int(n)

    def load(self, job: str, row: int) -> Record | None:
        (st,), (blob,), (nxt,) = self._read(job, [row], False)
        if st is None or blob is None:
            return None
        return self._record(job, row, st, blob, nxt)

    def message(self, job: str, row: int) -> RenderedMessage | None:
        got = self._do("read", self.client.hget, self.key(job, "body"), row)
        if got is None:
            return None
        return _msg_dec.decode(self.keys.open(got, _ctx(job, row, b"body")))

    def records(
        self, job: str, *, states: Iterable[str] | None = None, limit: int = 100
    ) -> list[Record]:
        wanted = set(states or ())
        got = self._do("read", self.client.hgetall, self.key(job, "st"))
        rows = sorted(
            int(r) for r, s in got.items() if not wanted or s.decode().partition(_US)[0] in wanted
        )[:limit]
        if not rows:
            return []
        sts, recs, nexts = self._read(job, rows, False)
        return [
            self._record(job, row, st, blob, nxt)
            for row, st, blob, nxt in zip(rows, sts, recs, nexts, strict=True)
            if st is not None and blob is not None
        ]

    def finals(self, job: str, cursor: FinalsCursor) -> list[Record]:
        """Rows given a final state since ``cursor`` (moved on), their records
        opened; read from the job's ``fin`` list, not its whole state hash.
        A record sealed with a key this host lacks is tried again next time;
        one that is missing or does not open comes back as a ``failed`` record
        (category ``unreadable``) so every counted row is reported."""
        got = self._do("read", self.client.lrange, self.key(job, "fin"), cursor.at, -1)
        rows = sorted({int(r) for r in got} - cursor.seen | cursor.later)
        later: set[int] = set()
        out = self.opened(job, rows, later)
        # Moved on only once they are read: a Redis failure reads them again.
        cursor.at += len(got)
        cursor.later = later
        cursor.seen.update(r.row for r in out)
        return out

    def opened(self, job: str, rows: Sequence[int], later: set[int] | None = None) -> list[Record]:
        """The final records of ``rows``, a thousand a round trip. One sealed
        with a key this host lacks is left out (its row added to ``later``);
        one missing or not opening is a ``failed`` record (``unreadable``)."""
        out: list[Record] = []
        for i in range(0, len(rows), 1000):
            part = rows[i : i + 1000]
            sts, recs, nexts = self._read(job, part, False)
            for row, st, blob, nxt in zip(part, sts, recs, nexts, strict=True):
                try:
                    if st is None or blob is None:
                        raise SpoolError("its record is missing")
                    rec = self._record(job, row, st, blob, nxt)
                except UnknownKeyError as exc:
                    self.missing_key(exc)
                    if later is not None:
                        later.add(row)
                    continue
                except UNREADABLE as exc:
                    state = st.decode().partition(_US)[0] if st is not None else "unknown"
                    rec = Record(
                        row=row,
                        state="failed",
                        category="unreadable",
                        reply=f"recorded {state}, but its record cannot be opened: {exc}",
                    )
                if rec.state in FINAL:
                    out.append(rec)
        return out

    def counts(self, job: str) -> dict[str, int]:
        got = self._do("read", self.client.hgetall, self.key(job, "n"))
        return {s.decode(): int(n) for s, n in got.items() if int(n) > 0}

    def per_domain(self, job: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        got = self._do("read", self.client.hgetall, self.key(job, "dom"))
        for k, n in got.items():
            if int(n) > 0:
                domain, _, state = k.decode().partition(_US)
                out.setdefault(domain, {})[state] = int(n)
        return out

    def next_due(self, job: str | None = None) -> float | None:
        best: float | None = None
        for j in [job] if job is not None else [i.id for i in self.jobs()]:
            got = self._do(
                "read",
                self._next,
                keys=[self.key(j, "due"), self.key(j, "claim")],
            )
            if got is not None:
                t = float(got)
                best = t if best is None else min(best, t)
        return best

    def make_due(self, *, job: str | None = None, rows: Iterable[int] | None = None) -> int:
        n = 0
        for j in [job] if job is not None else [i.id for i in self.jobs()]:
            key = self.key(j, "due")
            if rows is None:
                wanted = [int(r) for r in self._do("read", self.client.zrange, key, 0, -1)]
            else:
                wanted = list(rows)
            deferred = [
                r for r, s in zip(wanted, self.states(j, wanted), strict=True) if s == "deferred"
            ]
            if deferred:
                self._do("write", self.client.zadd, key, dict.fromkeys(deferred, 0), xx=True)
            n += len(deferred)
        return n

    def drop(self, *, job: str, rows: Iterable[int] | None = None) -> int:
        """Give up on deferred or pending messages: failed, their bytes deleted."""
        now = time.time()
        keys = [self.key(job, p) for p in ("st", "n", "dom", "body", "due", "claim", "fin")]
        got = self._do("write", self._drop, keys=keys, args=[repr(now), *(rows or ())])
        dropped = [int(r) for r in got]
        if dropped:
            # The reason, as in the embedded spool: the record says it was dropped.
            recs = self._do("read", self.client.hmget, self.key(job, "rec"), dropped)
            fresh: dict[int, bytes] = {}
            for row, blob in zip(dropped, recs, strict=True):
                if blob is not None:
                    attempts, first_at, code, _, _, sealed = _rec_dec.decode(blob)
                    fresh[row] = msgspec.msgpack.encode(
                        (attempts, first_at, code, "dropped", now, sealed)
                    )
            if fresh:
                self._do("write", self.client.hset, self.key(job, "rec"), mapping=fresh)
        return len(dropped)

    def close(self) -> None:
        if self.owned:
            self.client.close()

    def __enter__(self) -> RedisSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["FinalsCursor", "RedisSpool", "State", "connect"]
