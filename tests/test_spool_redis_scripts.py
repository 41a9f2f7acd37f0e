"""The spool's scripts that replaced row-by-row ones leave Redis exactly as
those did (kept here as the reference): random calls through both, on a
real Redis, compared key by key.

The store script (its arguments worked out by ``store_args``) writes a
call's rows with a few variadic commands; the due script reads due rows a
page at a time and their claims one ZMSCORE a page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.spool.redis_spool import DUE_LUA, STORE_LUA, store_args
from tests._redis import private_server

pytestmark = pytest.mark.redis

#: The script as it was (nine or so commands a row): the reference.
OLD_STORE_LUA = """
local claim = tonumber(ARGV[1])
for i = 2, #ARGV, 6 do
  local row, state, domain = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local old = redis.call('HGET', KEYS[1], row)
  if old then
    local ost, od = string.match(old, '^([^\\31]*)\\31(.*)$')
    redis.call('HINCRBY', KEYS[3], ost, -1)
    redis.call('HINCRBY', KEYS[4], od .. '\\31' .. ost, -1)
  end
  redis.call('HSET', KEYS[1], row, state .. '\\31' .. domain)
  redis.call('HINCRBY', KEYS[3], state, 1)
  redis.call('HINCRBY', KEYS[4], domain .. '\\31' .. state, 1)
  redis.call('HSET', KEYS[2], row, ARGV[i + 3])
  local final = state ~= 'pending' and state ~= 'deferred'
  if final then redis.call('RPUSH', KEYS[8], row) end
  if ARGV[i + 4] ~= '' then
    redis.call('HSET', KEYS[5], row, ARGV[i + 4])
    redis.call('ZADD', KEYS[6], ARGV[i + 5], row)
  elseif final then
    redis.call('HDEL', KEYS[5], row)
    redis.call('ZREM', KEYS[6], row)
  elseif redis.call('HEXISTS', KEYS[5], row) == 1 then
    redis.call('ZADD', KEYS[6], ARGV[i + 5], row)
  end
  if claim > 0 and not final then
    redis.call('ZADD', KEYS[7], claim, row)
  else
    redis.call('ZREM', KEYS[7], row)
  end
end
return 1
"""

PARTS = ("st", "rec", "n", "dom", "body", "due", "claim", "fin")
STATES = ("pending", "deferred", "delivered", "failed", "bounced", "skipped", "suppressed")

#: The commands the store scripts may run.
DATA = {"hget", "hmget", "hset", "hincrby", "hexists", "hdel", "rpush", "zadd", "zrem"}

Row = tuple[int, str, str, str, str, str]


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    # A server of the module's own: every example empties the keys it uses.
    with private_server() as url:
        c = redis.Redis.from_url(url)
        yield c
        c.close()


def _keys(job: str) -> list[str]:
    return [f"t:{{{job}}}:{p}" for p in PARTS]


def _old_args(claim: float, rows: list[Row]) -> list[Any]:
    out: list[Any] = [repr(claim)]
    for r in rows:
        out += r
    return out


def _new_args(claim: float, rows: list[Row]) -> list[Any]:
    # What the spool's _write passes: the same rows, worked out by the caller.
    return store_args(
        claim, [(r, s, d, blob.encode(), body.encode(), at) for r, s, d, blob, body, at in rows]
    )


def _contents(c: redis.Redis, job: str) -> dict[str, Any]:
    """Every key of ``job``, whole: hashes as mappings (a hash's field order
    is not part of its contents), lists and sorted sets in order, scores too."""
    out: dict[str, Any] = {}
    for part, key in zip(PARTS, _keys(job), strict=True):
        kind = c.type(key).decode()
        if kind == "hash":
            out[part] = c.hgetall(key)
        elif kind == "list":
            out[part] = c.lrange(key, 0, -1)
        elif kind == "zset":
            out[part] = c.zrange(key, 0, -1, withscores=True)
        else:
            out[part] = kind
    return out


def _both(c: redis.Redis, calls: list[tuple[float, list[Row]]]) -> None:
    old, new = c.register_script(OLD_STORE_LUA), c.register_script(STORE_LUA)
    c.delete(*_keys("old"), *_keys("new"))
    for claim, rows in calls:
        old(keys=_keys("old"), args=_old_args(claim, rows))
        new(keys=_keys("new"), args=_new_args(claim, rows))
        assert _contents(c, "new") == _contents(c, "old"), (claim, rows)


_row = st.tuples(
    st.integers(1, 6),  # few rows: repeated within a call and across calls
    st.sampled_from(STATES),
    st.sampled_from(["a.example", "b.example"]),
    st.sampled_from(["r1", "r2", "r3"]),
    st.sampled_from(["", "", "body1", "body2"]),
    st.sampled_from(["0", "1700000000.5", "12.25", "99"]),
).map(lambda t: (t[0], *t[1:]))
_call = st.tuples(st.sampled_from([0.0, 1700000123.75, 5.5]), st.lists(_row, max_size=8))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(_call, min_size=1, max_size=6))
def test_store_script_leaves_what_the_row_by_row_script_left(
    client: redis.Redis, calls: list[tuple[float, list[Row]]]
) -> None:
    _both(client, calls)


def test_a_row_twice_in_a_call_is_stored_as_in_two_steps(client: redis.Redis) -> None:
    # Cases the random ones may miss: a state set and undone in one call (its
    # count field created at 0), a body written then deleted then written.
    calls: list[tuple[float, list[Row]]] = [
        (5.5, [(1, "pending", "a.example", "r1", "", "0"),
               (1, "delivered", "a.example", "r2", "", "0")]),
        (0.0, [(2, "deferred", "b.example", "r1", "body1", "12.25"),
               (2, "failed", "b.example", "r1", "", "0"),
               (2, "deferred", "b.example", "r2", "", "99"),
               (2, "deferred", "b.example", "r3", "body2", "99")]),
        (5.5, [(3, "bounced", "a.example", "r1", "", "0"),
               (3, "pending", "b.example", "r1", "", "0"),
               (3, "pending", "b.example", "r1", "", "1")]),
    ]  # fmt: skip
    _both(client, calls)


def test_long_calls_are_written_in_parts(client: redis.Redis) -> None:
    # More values than one Lua unpack() gives: each variadic command in parts.
    many = 9000
    first = [(r, "pending", "a.example", "r1", "body1", "5") for r in range(1, many + 1)]
    then = [
        (r, STATES[r % len(STATES)], "ab"[r % 2] + ".example", "r2", "", "7")
        for r in range(1, many + 1)
    ]
    _both(client, [(1700000123.75, first), (0.0, then)])


def test_a_call_runs_a_few_commands_not_a_few_a_row(client: redis.Redis) -> None:
    # What this script is for: Redis's work a call, shared by every worker.
    client.delete(*_keys("new"))
    rows = [(r, "delivered", "a.example", "r1", "", "0") for r in range(1, 101)]
    client.config_resetstat()
    client.register_script(STORE_LUA)(keys=_keys("new"), args=_new_args(0.0, rows))
    stats = client.info("commandstats")
    # The commands the script ran (the client's own EVALSHA, SCRIPT LOAD aside).
    ran = sum(v["calls"] for k, v in stats.items() if k.split("_")[1].split("|")[0] in DATA)
    assert ran <= 12, stats  # the row-by-row script: 1000


#: The due script as it was: the reference.
OLD_DUE_LUA = """
local now, limit, till = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out = {}
for _, row in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local c = redis.call('ZSCORE', KEYS[2], row)
  if not c or tonumber(c) <= now then
    redis.call('ZADD', KEYS[2], till, row)
    out[#out + 1] = row
    if #out >= limit then break end
  end
end
return out
"""


def _due_keys(job: str) -> list[str]:
    return [f"d:{{{job}}}:due", f"d:{{{job}}}:claim"]


def _due_both(
    c: redis.Redis,
    due: dict[int, float],
    claim: dict[int, float],
    calls: list[tuple[float, int, float]],
) -> None:
    old, new = c.register_script(OLD_DUE_LUA), c.register_script(DUE_LUA)
    for job in ("old", "new"):
        c.delete(*_due_keys(job))
        if due:
            c.zadd(_due_keys(job)[0], due)
        if claim:
            c.zadd(_due_keys(job)[1], claim)
    for now, limit, till in calls:
        args = [repr(now), limit, repr(till)]
        got_old = old(keys=_due_keys("old"), args=args)
        got_new = new(keys=_due_keys("new"), args=args)
        assert got_new == got_old, (now, limit, till)
        for k_old, k_new in zip(_due_keys("old"), _due_keys("new"), strict=True):
            assert c.zrange(k_new, 0, -1, withscores=True) == c.zrange(
                k_old, 0, -1, withscores=True
            )


_times = st.sampled_from([0.0, 5.0, 10.0, 10.5, 20.0, 30.0])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    due=st.dictionaries(st.integers(1, 30), _times, max_size=30),
    claim=st.dictionaries(st.integers(1, 30), _times, max_size=30),
    calls=st.lists(st.tuples(_times, st.integers(0, 12), _times), min_size=1, max_size=5),
)
def test_due_script_claims_what_the_row_by_row_script_claimed(
    client: redis.Redis,
    due: dict[int, float],
    claim: dict[int, float],
    calls: list[tuple[float, int, float]],
) -> None:
    _due_both(client, due, claim, calls)


def test_due_rows_past_a_page_of_claimed_ones_are_found(client: redis.Redis) -> None:
    # 1,200 due rows, the first 1,100 claimed by others but those on either
    # side of a page's end: a call takes the free ones in order, pages on.
    due = {r: float(r) for r in range(1, 1201)}
    claim = {r: 99999.0 for r in range(1, 1101) if r not in (500, 501, 1000, 1001)}
    _due_both(client, due, claim, [(5000.0, 60, 6000.0), (5000.0, 60, 6000.0), (5000.0, 1, 1.0)])
