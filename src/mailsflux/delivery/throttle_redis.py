"""Throttles shared through Redis: GCRA and leases in Lua, one round trip each.

Every decision runs in a Lua script on the server and uses the server's
``TIME``, so processes on different machines with skewed clocks still share
one rate. Scripts are loaded once per backend with ``SCRIPT LOAD`` and run
with ``EVALSHA``; a ``NOSCRIPT`` reply (script cache flushed, failover)
loads them again and retries once.

GCRA state is one string key per spec, ``base:off``, meaning the theoretical
arrival time ``base + off / limit`` microseconds: all arithmetic stays in
exact integers (Lua numbers are doubles; everything stays far below 2**53).
The key expires when its TAT passes, which is the same as fresh state.

Leases are a sorted set per (name, limit): members are lease ids scored by
expiry (microseconds, server clock). Acquire drops expired members, checks
the count and adds, in one script; a crashed holder's lease simply expires.

Redis Cluster: one acquire touches keys of several names (site and job),
which live in different slots. With a cluster client, specs of different
names are taken one after another and the surplus is refunded: never more
than any spec allows, but not atomic across names. With one server the
whole acquire is one script.

Any Redis failure raises :class:`ThrottleBackendError` (temporary);
nothing is granted then, so nothing is sent without a grant.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, RedisError

from mailsflux._redis import async_client
from mailsflux.delivery.throttle import (
    ConcurrencySpec,
    Grant,
    Lease,
    RateSpec,
    ThrottleBackendError,
    lease_id,
    unique_specs,
)

__all__ = ["GCRA_LUA", "LEASE_LUA", "REFUND_LUA", "RENEW_LUA", "RedisThrottles"]

#: KEYS: one GCRA key per spec. ARGV: n, then limit, burst, period_us per key.
#: Returns {granted, retry_after_us, next_after_us, now_us}.
GCRA_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local nk = #KEYS
local base, off, L, B, P = {}, {}, {}, {}, {}
local granted = n
local minburst = n
for i = 1, nk do
  local j = 2 + (i - 1) * 3
  L[i] = tonumber(ARGV[j])
  B[i] = tonumber(ARGV[j + 1])
  P[i] = tonumber(ARGV[j + 2])
  local b, o = now, 0
  local s = redis.call('GET', KEYS[i])
  if s then
    local sb, so = string.match(s, '^(%d+):(%d+)$')
    if sb then
      sb = tonumber(sb)
      so = tonumber(so)
      if sb > now or (sb == now and so > 0) then
        b, o = sb, so
      end
    end
  end
  base[i] = b
  off[i] = o
  local fit = math.floor(((now - b) * L[i] - o + (B[i] - 1) * P[i]) / P[i]) + 1
  if fit < granted then granted = fit end
  if B[i] < minburst then minburst = B[i] end
end
if granted < 0 then granted = 0 end
if granted > 0 then
  for i = 1, nk do
    local o = off[i] + granted * P[i]
    local carry = math.floor(o / L[i])
    base[i] = base[i] + carry
    off[i] = o - carry * L[i]
    local ms = math.floor((base[i] - now) / 1000) + 2
    redis.call('SET', KEYS[i], string.format('%.0f:%.0f', base[i], off[i]), 'PX', ms)
  end
end
local function wait(m)
  local worst = 0
  for i = 1, nk do
    local x = (base[i] - now) * L[i] + off[i] + (m - B[i]) * P[i]
    local w = math.ceil(x / L[i])
    if w > worst then worst = w end
  end
  return worst
end
local rest = n - granted
local retry = 0
if rest > 0 then
  retry = wait(math.min(rest, minburst))
  if retry < 1 then retry = 1 end
end
return {granted, retry, wait(math.min(n, minburst)), now}
"""

#: Give back ``count`` tokens charged but not used (cluster path).
#: KEYS[1]; ARGV: limit, burst, period_us, count.
REFUND_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local L, P, c = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('GET', KEYS[1])
if not s then return 0 end
local b, o = string.match(s, '^(%d+):(%d+)$')
if not b then return 0 end
o = tonumber(o) - c * P
local borrow = math.floor(o / L)
b = tonumber(b) + borrow
o = o - borrow * L
if b < now or (b == now and o == 0) then
  redis.call('DEL', KEYS[1])
  return 1
end
local ms = math.floor((b - now) / 1000) + 2
redis.call('SET', KEYS[1], string.format('%.0f:%.0f', b, o), 'PX', ms)
return 1
"""

#: KEYS[1]: the lease set. ARGV: limit, ttl_us, lease id.
#: Returns {1, expires_us, now_us} or {0, retry_after_us, now_us}.
LEASE_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[3])
  local ms = math.floor(ttl / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
  return {1, now + ttl, now}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now, now}
"""

#: KEYS[1]: the lease set. ARGV: ttl_us, lease id. Returns {1|0, expires_us|0}.
RENEW_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
local s = redis.call('ZSCORE', KEYS[1], ARGV[2])
if s and tonumber(s) > now then
  redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + ttl), ARGV[2])
  local ms = math.floor(ttl / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
  return {1, now + ttl}
end
if s then redis.call('ZREM', KEYS[1], ARGV[2]) end
return {0, 0}
"""

_US: Final = 1e-6


class _Script:
    __slots__ = ("loaded", "sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
        self.loaded = False


class RedisThrottles:
    """:class:`~mailsflux.delivery.throttle.Throttles` shared through one Redis (or cluster).

    ``url_or_client``: a ``redis://`` URL (the client is created here, with
    short timeouts and few retries, and closed by :meth:`close`) or an
    existing ``redis.asyncio`` client (left open by :meth:`close`).
    ``prefix`` starts every key.
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis | RedisCluster,
        *,
        prefix: str = "mf",
        lease_poll: float = 0.05,
        timeout: float = 2.0,
        split: bool | None = None,
    ) -> None:
        if isinstance(url_or_client, str):
            # One server, a Cluster or Sentinel's master, as the URL says.
            self.client: aioredis.Redis | RedisCluster = async_client(
                url_or_client,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 2),
            )
            self._owned = True
        else:
            self.client = url_or_client
            self._owned = False
        self.prefix = prefix
        self.lease_poll = lease_poll
        #: Take specs of different names one by one (Redis Cluster needs it).
        self.split = isinstance(self.client, RedisCluster) if split is None else split
        self._gcra = _Script(GCRA_LUA)
        self._refund = _Script(REFUND_LUA)
        self._lease = _Script(LEASE_LUA)
        self._renew_s = _Script(RENEW_LUA)
        self._keys: dict[RateSpec, str] = {}

    # -- plumbing -------------------------------------------------------------------

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        client: Any = self.client
        try:
            if not script.loaded:
                await client.script_load(script.text)
                script.loaded = True
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await client.script_load(script.text)
                return await client.evalsha(script.sha, len(keys), *keys, *args)
        except RedisError as exc:
            raise ThrottleBackendError(f"throttle backend (Redis): {exc}") from exc
        except OSError as exc:
            raise ThrottleBackendError(f"throttle backend (Redis): {exc}") from exc

    def _key(self, spec: RateSpec) -> str:
        key = self._keys.get(spec)
        if key is None:
            if len(self._keys) > 65536:
                self._keys.clear()
            key = self._keys[spec] = spec.redis_key(self.prefix)
        return key

    # -- rates ----------------------------------------------------------------------

    async def acquire(self, specs: Sequence[RateSpec], n: int = 1) -> Grant:
        if n < 0:
            raise ValueError("n must be >= 0")
        uniq = unique_specs(specs)
        if n == 0 or not uniq:
            return Grant(n if not uniq else 0)
        if self.split and len({s.name for s in uniq}) > 1:
            return await self._acquire_split(uniq, n)
        return await self._acquire_one(uniq, n)

    async def _acquire_one(self, specs: Sequence[RateSpec], n: int) -> Grant:
        args: list[int | str] = [n]
        for s in specs:
            args += (s.limit, s.burst, s.period_us)
        granted, retry, nxt, now = await self._run(self._gcra, [self._key(s) for s in specs], args)
        return Grant(int(granted), retry * _US, nxt * _US, now * _US)

    async def _acquire_split(self, specs: Sequence[RateSpec], n: int) -> Grant:
        # Charge the tightest-looking spec first; refund the surplus of earlier ones.
        order = sorted(specs, key=lambda s: (s.burst, s.limit / s.period))
        charged: list[tuple[RateSpec, int]] = []
        want = n
        grants: list[Grant] = []
        try:
            for spec in order:
                g = await self._acquire_one([spec], want)
                grants.append(g)
                charged.append((spec, g.granted))
                want = g.granted
                if want == 0:
                    break
        except BaseException:
            # Nothing is granted: give back what was taken, as far as Redis lets us.
            with contextlib.suppress(ThrottleBackendError):
                await self._refund_surplus(charged, 0)
            raise
        await self._refund_surplus(charged, want)
        retry = max(g.retry_after for g in grants) if want < n else 0.0
        nxt = max(g.next_after for g in grants)
        return Grant(want, retry, nxt, grants[-1].at)

    async def _refund_surplus(self, charged: Sequence[tuple[RateSpec, int]], keep: int) -> None:
        for spec, got in charged:
            if got > keep:
                await self._run(
                    self._refund,
                    [self._key(spec)],
                    [spec.limit, spec.burst, spec.period_us, got - keep],
                )

    # -- leases ---------------------------------------------------------------------

    async def lease(self, spec: ConcurrencySpec, holder: str) -> Lease | Grant:
        lid = lease_id(holder)
        ok, value, now = await self._run(
            self._lease, [spec.redis_key(self.prefix)], [spec.limit, spec.ttl_us, lid]
        )
        if ok:
            return Lease(self, spec, holder, lid, value * _US)
        return Grant(0, min(max(value * _US, _US), self.lease_poll), 0.0, now * _US)

    async def _renew(self, lease: Lease) -> bool:
        ok, expires = await self._run(
            self._renew_s, [lease.spec.redis_key(self.prefix)], [lease.spec.ttl_us, lease.id]
        )
        if ok:
            lease.expires = expires * _US
        return bool(ok)

    async def _release(self, lease: Lease) -> None:
        try:
            await self.client.zrem(lease.spec.redis_key(self.prefix), lease.id)
        except (RedisError, OSError) as exc:
            # The lease expires by itself; the caller still learns it is not confirmed.
            raise ThrottleBackendError(f"throttle backend (Redis): {exc}") from exc

    async def held(self, spec: ConcurrencySpec) -> int:
        """Live leases of ``spec`` now (server clock)."""
        client: Any = self.client
        try:
            t = await client.time()
            now = t[0] * 1_000_000 + t[1]
            return int(await client.zcount(spec.redis_key(self.prefix), f"({now}", "+inf"))
        except (RedisError, OSError) as exc:
            raise ThrottleBackendError(f"throttle backend (Redis): {exc}") from exc

    async def close(self) -> None:
        if self._owned:
            await self.client.aclose()
