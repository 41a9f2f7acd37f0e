"""The spool's due script, which reads due rows a page at a time and their
claims one ZMSCORE a page, claims the same rows, in the same order, and
leaves the same claims as the script it replaced, which read every due row
and asked for each row's claim on its own (kept here as the reference)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsflux.spool.redis_spool import DUE_LUA
from tests._redis import private_server

pytestmark = pytest.mark.redis

#: The script as it was: the reference.
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


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    with private_server() as url:
        c = redis.Redis.from_url(url)
        yield c
        c.close()


def _keys(job: str) -> list[str]:
    return [f"t:{{{job}}}:due", f"t:{{{job}}}:claim"]


def _both(
    c: redis.Redis,
    due: dict[int, float],
    claim: dict[int, float],
    calls: list[tuple[float, int, float]],
) -> None:
    old, new = c.register_script(OLD_DUE_LUA), c.register_script(DUE_LUA)
    for job in ("old", "new"):
        c.delete(*_keys(job))
        if due:
            c.zadd(_keys(job)[0], due)
        if claim:
            c.zadd(_keys(job)[1], claim)
    for now, limit, till in calls:
        args = [repr(now), limit, repr(till)]
        got_old = old(keys=_keys("old"), args=args)
        got_new = new(keys=_keys("new"), args=args)
        assert got_new == got_old, (now, limit, till)
        for k_old, k_new in zip(_keys("old"), _keys("new"), strict=True):
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
    _both(client, due, claim, calls)


def test_due_rows_past_a_page_of_claimed_ones_are_found(client: redis.Redis) -> None:
    # 1,200 due rows, the first 1,100 claimed by others but those on either
    # side of a page's end: a call takes the free ones in order, pages on.
    due = {r: float(r) for r in range(1, 1201)}
    claim = {r: 99999.0 for r in range(1, 1101) if r not in (500, 501, 1000, 1001)}
    _both(client, due, claim, [(5000.0, 60, 6000.0), (5000.0, 60, 6000.0), (5000.0, 1, 1.0)])
