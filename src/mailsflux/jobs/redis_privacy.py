"""Key rotation and a person's rights over the spool in Redis.

Two on-request operations that visit every sealed value of every job
(``SCAN``-style: ``HSCAN`` and ``XRANGE`` in pages, never ``KEYS``):

* :func:`reseal` seals again, under the key ring's newest key, each job's
  records (``rec``), deferred bodies (``body``), delivery settings
  (``spec``) and the stream batches no worker has taken yet, while workers
  run: each value is swapped only if it is still the one read (a worker
  that wrote meanwhile wins), so nothing a worker records is lost.
* :func:`person` finds one person's rows (each record opened: addresses
  are not indexed) and exports, erases or corrects them.

A batch a worker already holds cannot be swapped without risking a second
send: it stays under the old key (which stays in the ring) until it is
acknowledged and deleted. Quarantined values are those that do not open;
they are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import msgspec

from mailsflux.errors import SpoolError
from mailsflux.jobs.redis_batches import RESULTS, _msgs_dec, _spec_ctx, batch_ctx, is_prepared
from mailsflux.jobs.worker import _rows_dec, _rows_enc
from mailsflux.spool.redis_spool import RedisSpool, _rec_dec
from mailsflux.spool.sqlite import _ctx, _meta_dec, person_record
from mailsflux.spool.store import FINAL, Record

#: KEYS: a hash. ARGV: field, old, new, ... Sets each field still holding ``old``.
HCAS_LUA: Final = """
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""

#: KEYS: a string. ARGV: old, new.
CAS_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: KEYS: the stream. ARGV: entry id, first, n ('' none), sealed ('' none: only
#: deleted), at ('' none: a prepared entry's rows, :mod:`.redis_batches`).
#: Replaces an entry no consumer has been given yet (after the group's
#: last-delivered id); 0 when it is gone or a worker holds it.
SWAP_LUA: Final = """
local function num(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, lid
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1] end
    if g[j] == 'last-delivered-id' then lid = g[j + 1] end
  end
  if name == 'w' then last = lid end  -- the workers' group, jobs.worker.GROUP
end
local ams, aseq = num(ARGV[1])
local bms, bseq = num(last)
if ams < bms or (ams == bms and aseq <= bseq) then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then
  local f = {'first', ARGV[2]}
  if ARGV[3] ~= '' then f[#f + 1] = 'n'; f[#f + 1] = ARGV[3] end
  if ARGV[5] ~= '' then f[#f + 1] = 'at'; f[#f + 1] = ARGV[5] end
  f[#f + 1] = 'rows'; f[#f + 1] = ARGV[4]
  redis.call('XADD', KEYS[1], '*', unpack(f))
end
return 1
"""


def _hscan(spool: RedisSpool, key: str) -> Iterator[tuple[bytes, bytes]]:
    yield from spool._do("read", lambda: list(spool.client.hscan_iter(key, count=500)))


def _entries(spool: RedisSpool, job: str) -> Iterator[tuple[str, dict[bytes, bytes]]]:
    """The job's stream entries, a page at a time."""
    key, start = spool.key(job, "q"), "-"
    while True:
        page = spool._do("read", spool.client.xrange, key, start, "+", 200)
        for eid, fields in page:
            yield (eid.decode() if isinstance(eid, bytes) else str(eid)), fields
        if len(page) < 200:
            return
        last = page[-1][0]
        ms, _, seq = (last.decode() if isinstance(last, bytes) else str(last)).partition("-")
        start = f"{ms}-{int(seq) + 1}"


def _swap(
    spool: RedisSpool,
    job: str,
    eid: str,
    fields: dict[bytes, bytes],
    sealed: bytes,
    count: int,
    rows: list[int] | None = None,
) -> bool:
    """The entry now ``sealed`` (``count`` rows; b"": deleted), unless a worker
    holds it. A prepared entry keeps naming its rows (``rows``, else as it did)."""
    n = str(count).encode() if b"n" in fields else b""
    at = fields.get(b"at", b"")
    if at and rows is not None:
        at = ",".join(map(str, rows)).encode()
    got = spool._do(
        "write",
        spool.client.register_script(SWAP_LUA),
        keys=[spool.key(job, "q")],
        args=[eid, fields[b"first"], n, sealed, at],
    )
    return bool(got)


def _open_batch(
    spool: RedisSpool, job: str, fields: dict[bytes, bytes], prepared: bool
) -> list[Any]:
    """The entry's rows (a job file's) or signed messages (a prepared job's)."""
    plain = spool.keys.open(fields[b"rows"], batch_ctx(job, int(fields[b"first"])))
    return list((_msgs_dec if prepared else _rows_dec).decode(plain))


def reseal(spool: RedisSpool) -> dict[str, int]:
    """Every value of every job not under the ring's newest key sealed under it."""
    keys = spool.keys
    current = keys.current_id
    hcas = spool.client.register_script(HCAS_LUA)
    done = {"records": 0, "bodies": 0, "specs": 0, "batches": 0, "batches_held": 0}
    for info in spool.jobs():
        job = info.id
        args: list[bytes] = []
        for field, blob in _hscan(spool, spool.key(job, "rec")):
            rec = _rec_dec.decode(blob)
            if keys.key_id(rec[5]) != current:
                ctx = _ctx(job, int(field), b"meta")
                fresh = msgspec.msgpack.encode((*rec[:5], keys.seal(keys.open(rec[5], ctx), ctx)))
                args += (field, blob, fresh)
        done["records"] += spool._do("write", hcas, keys=[spool.key(job, "rec")], args=args)
        args = []
        for field, blob in _hscan(spool, spool.key(job, "body")):
            if keys.key_id(blob) != current:
                ctx = _ctx(job, int(field), b"body")
                args += (field, blob, keys.seal(keys.open(blob, ctx), ctx))
        done["bodies"] += spool._do("write", hcas, keys=[spool.key(job, "body")], args=args)
        spec = spool._do("read", spool.client.get, spool.key(job, "spec"))
        if spec is not None and keys.key_id(spec) != current:
            fresh = keys.seal(keys.open(spec, _spec_ctx(job)), _spec_ctx(job))
            cas = spool.client.register_script(CAS_LUA)
            done["specs"] += spool._do(
                "write", cas, keys=[spool.key(job, "spec")], args=[spec, fresh]
            )
        for eid, fields in _entries(spool, job):
            sealed = fields.get(b"rows", b"")
            if not sealed or keys.key_id(sealed) == current:
                continue
            ctx = batch_ctx(job, int(fields[b"first"]))
            n = fields.get(b"n", b"1")
            fresh = keys.seal(keys.open(sealed, ctx), ctx)
            if _swap(spool, job, eid, fields, fresh, int(n) if n.isdigit() else 1):
                done["batches"] += 1
            else:
                done["batches_held"] += 1
    # Hosts whose key file lacks the new key are told so when they start.
    spool._do("write", spool.client.set, f"{spool.prefix}:kid", current)
    return done


def person(
    spool: RedisSpool,
    match: Callable[[str], bool],
    *,
    erase: bool = False,
    correct: str | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """One person's rows in every job (``source``: only the jobs of that
    :attr:`JobInfo.source`, one engine's): recorded ones (``rec``) and ones still
    waiting in a stream batch. With ``erase`` an address and reply are
    blanked, a waiting row is recorded failed (``erased``) so no worker sends
    it, its deferred body deleted, and a batch no worker holds yet is sealed
    again without the row; with ``correct`` the address becomes that one."""
    found: list[dict[str, Any]] = []
    for info in spool.jobs():
        if source is not None and info.source != source:
            continue
        # A worker that wrote one of the records meanwhile wins its swap; the
        # record is read again (and, still theirs, changed) on the next pass.
        for attempt in range(5):
            got, settled = _records(spool, info, match, erase=erase, correct=correct)
            if attempt == 0:
                found += got
            if settled:
                break
        else:
            raise SpoolError(f"job {info.name}: its records kept changing; ask again")
        found += _batches(spool, info, match, erase=erase, correct=correct)
    return found


def _records(
    spool: RedisSpool,
    info: Any,
    match: Callable[[str], bool],
    *,
    erase: bool,
    correct: str | None,
) -> tuple[list[dict[str, Any]], bool]:
    """The person's records of one job, and whether every change held."""
    keys = spool.keys
    job = info.id
    found: list[dict[str, Any]] = []
    args: list[bytes] = []
    waiting: list[int] = []
    for field, blob in _hscan(spool, spool.key(job, "rec")):
        row = int(field)
        attempts, first_at, code, category, updated, sealed = _rec_dec.decode(blob)
        ctx = _ctx(job, row, b"meta")
        fields = _meta_dec.decode(keys.open(sealed, ctx))
        rcpt = fields[0]
        if not rcpt or not match(rcpt) or (correct is not None and rcpt == correct):
            continue
        (state,) = spool.states(job, [row])
        doc, plain = person_record(
            info.name, row, state, updated, fields, erase=erase, correct=correct
        )
        found.append(doc)
        if plain is None:
            continue
        if erase and state not in FINAL:
            waiting.append(row)
            category = "erased"
        fresh = (attempts, first_at, code, category, updated, keys.seal(plain, ctx))
        args += (field, blob, msgspec.msgpack.encode(fresh))
    if waiting:
        # Failed, body deleted, before the record is blanked: never sent.
        spool.drop(job=job, rows=waiting)
        args = _rebased(spool, job, args)
    hcas = spool.client.register_script(HCAS_LUA)
    done = spool._do("write", hcas, keys=[spool.key(job, "rec")], args=args) if args else 0
    return found, done == len(args) // 3


def _rebased(spool: RedisSpool, job: str, args: list[bytes]) -> list[bytes]:
    """``args`` (field, old, new) against the records as they are now
    (:meth:`RedisSpool.drop` rewrote some), keeping the new sealed part."""
    fields = args[0::3]
    now = spool._do("read", spool.client.hmget, spool.key(job, "rec"), fields)
    out: list[bytes] = []
    for field, cur, new in zip(fields, now, args[2::3], strict=True):
        if cur is not None:
            out += (field, cur, new)
    return out


def _batches(
    spool: RedisSpool,
    info: Any,
    match: Callable[[str], bool],
    *,
    erase: bool,
    correct: str | None,
) -> list[dict[str, Any]]:
    """The person's rows still in the job's stream."""
    job = info.id
    found: list[dict[str, Any]] = []
    prepared = is_prepared(info)
    for eid, fields in _entries(spool, job):
        if not fields.get(b"rows"):
            continue
        items = _open_batch(spool, job, fields, prepared)
        mine = [it for it in items if match(it.rcpt_to if prepared else it[1])]
        if not mine:
            continue
        rows = [it.row if prepared else it[0] for it in mine]
        states = spool.states(job, rows)
        for it, row, state in zip(mine, rows, states, strict=True):
            doc: dict[str, Any] = {
                "job": info.name,
                "row": row,
                "state": state or "pending",
                "recipient": it.rcpt_to if prepared else it[1],
                "batch": eid,
            }
            if not prepared:
                doc["fields"] = it[2]
            elif correct is not None:
                # Composed and signed for this address (its To: field too):
                # only a new message can reach the corrected one.
                doc["corrected"] = False
                doc["why"] = "already signed for this address: send it again to the new one"
            found.append(doc)
        if erase:
            todo = [r for r, s in zip(rows, states, strict=True) if s is None or s == "pending"]
            domain = (mine[0].rcpt_to if prepared else mine[0][1]).rpartition("@")[2].lower()
            gone = [Record(row=r, state="failed", category="erased", domain=domain) for r in todo]
            spool.store(job, gone)
            if prepared and todo:
                # Its submitter hears of each row on the job's results stream
                # (an engine's send() waits there), as workers announce theirs.
                spool._do(
                    "write",
                    spool.client.xadd,
                    spool.key(job, RESULTS),
                    {"rows": ",".join(map(str, todo))},
                )
            rest = [it for it in items if it not in mine]
        elif correct is not None and not prepared:
            rest = [(it[0], correct, it[2]) if it in mine else it for it in items]
        else:
            continue
        ctx = batch_ctx(job, int(fields[b"first"]))
        sealed = spool.keys.seal(_rows_enc.encode(rest), ctx) if rest else b""
        # A batch a worker holds keeps its bytes until acknowledged; its erased rows are skipped.
        kept = [it.row if prepared else it[0] for it in rest]
        _swap(spool, job, eid, fields, sealed, len(rest), kept)
    return found


__all__ = ["person", "reseal"]
