"""Throttles: per-site and per-job rate limits (GCRA) and connection leases.

Two backends share one async interface, :class:`Throttles`:
:class:`LocalThrottles` (in-process, the default, no Redis) and
:class:`mailsflux.delivery.throttle_redis.RedisThrottles` (shared by every process
that talks to the same Redis).

Rates use the generic cell rate algorithm: a :class:`RateSpec` of ``limit``
per ``period`` seconds allows ``burst`` at once from idle, then one every
``period / limit`` seconds. In any window of ``W`` seconds at most
``burst + limit * W / period`` are granted. A spec's key carries its own
parameters, KumoMTA style (``site:gmail.com:100:20:1``), so changing a limit
starts fresh state instead of inheriting the old one.

Being throttled is a return value, never an exception: :meth:`Throttles.acquire`
returns a :class:`Grant` of as many tokens as fit now (all specs must allow
each one; the tightest wins; every spec is charged the same granted count,
all or nothing) plus ``retry_after``, the seconds until the rest fits.

Concurrent connections use leases (:class:`ConcurrencySpec`): a lease that
is neither renewed nor released expires by itself, so a crashed holder
cannot leak a slot.  Messages per connection is a plain number the scheduler
enforces; no backend is involved.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import msgspec

from mailsflux.errors import ConfigError, ThrottleBackendError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ConcurrencySpec",
    "Grant",
    "Lease",
    "LocalThrottles",
    "RateSpec",
    "ThrottleBackendError",
    "Throttles",
]

#: Arithmetic stays exact in Redis Lua (doubles): ``burst * period`` in
#: microseconds must stay well below 2**53.
_MAX_SCALED: Final = 2**50
_BAD_NAME_CHARS: Final = frozenset("{}\r\n\t \x00")


def _num(x: float) -> str:
    """A number as it appears in a key: ``1`` not ``1.0``, ``0.5`` as is."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _check_name(kind: str, name: str) -> None:
    if not name or any(c in _BAD_NAME_CHARS for c in name):
        raise ConfigError(
            f"{kind} name {name!r} must be non-empty, without braces, blanks or control characters",
            field="name",
        )


class RateSpec(msgspec.Struct, frozen=True, gc=False):
    """A GCRA rate limit: ``limit`` per ``period`` seconds, ``burst`` at once.

    ``name`` says what is limited (``site:gmail.com``, ``job:welcome``); it is
    also the Redis Cluster hash tag, so every key of one site shares a slot.
    """

    name: str
    limit: int
    burst: int = 1
    period: float = 1.0

    def __post_init__(self) -> None:
        _check_name("rate", self.name)
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigError(f"rate {self.name}: limit must be an integer >= 1", field="limit")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigError(f"rate {self.name}: burst must be an integer >= 1", field="burst")
        if not (math.isfinite(self.period) and self.period_us >= 1):
            raise ConfigError(f"rate {self.name}: period must be >= 1 us", field="period")
        if self.burst * self.period_us >= _MAX_SCALED or self.limit >= _MAX_SCALED:
            raise ConfigError(f"rate {self.name}: burst * period is too large", field="burst")

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        """``name:limit:burst:period``, e.g. ``site:gmail.com:100:20:1``."""
        parts = text.rsplit(":", 3)
        if len(parts) != 4:
            raise ConfigError(f"rate {text!r}: expected name:limit:burst:period", field="rate")
        name, limit, burst, period = parts
        try:
            return cls(name, int(limit), int(burst), float(period))
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"rate {text!r}: {exc}", field="rate") from None

    @classmethod
    def site(cls, domain: str, limit: int, burst: int = 1, period: float = 1.0) -> RateSpec:
        """Messages to one receiving site (domain or MX group)."""
        return cls(f"site:{domain.lower()}", limit, burst, period)

    @classmethod
    def job(cls, job: str, limit: int, burst: int = 1, period: float = 1.0) -> RateSpec:
        """Messages of one job (campaign), across every site."""
        return cls(f"job:{job}", limit, burst, period)

    @property
    def key(self) -> str:
        """``name:limit:burst:period``: the spec, parameters included."""
        return f"{self.name}:{self.limit}:{self.burst}:{_num(self.period)}"

    def redis_key(self, prefix: str = "mf") -> str:
        """``mf:{site:gmail.com}:gcra:100:20:1`` (hash tag = the name)."""
        return f"{prefix}:{{{self.name}}}:gcra:{self.limit}:{self.burst}:{_num(self.period)}"

    @property
    def period_us(self) -> int:
        return round(self.period * 1_000_000)

    @property
    def interval(self) -> float:
        """Seconds between tokens at the steady rate."""
        return self.period / self.limit


class ConcurrencySpec(msgspec.Struct, frozen=True, gc=False):
    """At most ``limit`` leases at once; a lease lives ``ttl`` seconds unless renewed."""

    name: str
    limit: int
    ttl: float = 60.0

    def __post_init__(self) -> None:
        _check_name("concurrency", self.name)
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigError(f"concurrency {self.name}: limit must be >= 1", field="limit")
        if not (math.isfinite(self.ttl) and self.ttl_us >= 1000):
            raise ConfigError(f"concurrency {self.name}: ttl must be >= 1 ms", field="ttl")

    @classmethod
    def site(cls, domain: str, limit: int, ttl: float = 60.0) -> ConcurrencySpec:
        return cls(f"site:{domain.lower()}", limit, ttl)

    @property
    def key(self) -> str:
        """``name:limit`` (the TTL is not part of the key)."""
        return f"{self.name}:{self.limit}"

    def redis_key(self, prefix: str = "mf") -> str:
        """``mf:{site:gmail.com}:conn:10``."""
        return f"{prefix}:{{{self.name}}}:conn:{self.limit}"

    @property
    def ttl_us(self) -> int:
        return round(self.ttl * 1_000_000)


class Grant(msgspec.Struct, frozen=True, gc=False):
    """What :meth:`Throttles.acquire` (or a full :meth:`Throttles.lease`) returned.

    ``granted``: tokens granted now (0..n), charged to every spec.
    ``retry_after``: 0.0 when all ``n`` were granted, else seconds until the
    rest (``n - granted``, at most the smallest burst) fits.
    ``next_after``: seconds until another acquire of ``n`` (at most the
    smallest burst) would be granted in full: the pacing hint for a
    scheduler that acquires per batch (one call per batch, not two).
    ``at``: the backend clock at the decision, in seconds (Redis ``TIME``,
    or the local monotonic clock).
    """

    granted: int
    retry_after: float = 0.0
    next_after: float = 0.0
    at: float = 0.0


class _LeaseBackend(Protocol):
    def _renew(self, lease: Lease) -> Awaitable[bool]: ...
    def _release(self, lease: Lease) -> Awaitable[None]: ...


class Lease:
    """One held slot of a :class:`ConcurrencySpec`.

    ``expires`` is on the backend clock (seconds). Renew well before it
    (every ``ttl / 3``, say); a lease not renewed in time is lost, and
    :meth:`renew` then returns False. Use as ``async with lease:`` to release.
    """

    __slots__ = ("_backend", "expires", "holder", "id", "released", "spec")

    def __init__(
        self, backend: _LeaseBackend, spec: ConcurrencySpec, holder: str, id: str, expires: float
    ) -> None:
        self._backend = backend
        self.spec = spec
        self.holder = holder
        self.id = id
        self.expires = expires
        self.released = False

    async def renew(self) -> bool:
        """Extend by the spec's TTL; False if the lease had already expired (it is gone)."""
        if self.released:
            return False
        return await self._backend._renew(self)

    async def release(self) -> None:
        """Give the slot back (idempotent)."""
        if not self.released:
            self.released = True
            await self._backend._release(self)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def __repr__(self) -> str:
        return f"Lease({self.spec.key!r}, id={self.id!r}, expires={self.expires:.3f})"


def lease_id(holder: str) -> str:
    """A unique lease id that still says who holds it."""
    return f"{holder}#{secrets.token_hex(6)}"


@runtime_checkable
class Throttles(Protocol):
    """The interface the scheduler uses; both backends implement it."""

    async def acquire(self, specs: Sequence[RateSpec], n: int = 1) -> Grant:
        """Up to ``n`` tokens from every spec at once (the tightest wins)."""
        ...

    async def lease(self, spec: ConcurrencySpec, holder: str) -> Lease | Grant:
        """A :class:`Lease`, or a :class:`Grant` of 0 with ``retry_after`` when full."""
        ...

    async def close(self) -> None: ...


def unique_specs(specs: Sequence[RateSpec]) -> list[RateSpec]:
    """The specs without repeats (the same key listed twice is charged once)."""
    seen: dict[str, RateSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key, spec)
    return list(seen.values())


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


class LocalThrottles:
    """In-process throttles for one event loop: exact integer GCRA, lease tables.

    ``clock`` returns nanoseconds (default :func:`time.monotonic_ns`); tests
    pass a controllable one.
    """

    #: Prune idle rate state after this many acquires.
    PRUNE_EVERY: Final = 4096

    def __init__(
        self, *, clock: Callable[[], int] = time.monotonic_ns, lease_poll: float = 0.05
    ) -> None:
        self._clock = clock
        self.lease_poll = lease_poll
        # key -> tat * limit (ns scaled by the limit, so every step is an integer)
        self._tat: dict[str, tuple[int, int]] = {}
        self._params: dict[RateSpec, tuple[str, int, int, int]] = {}
        # key -> lease id -> expiry (ns)
        self._leases: dict[str, dict[str, int]] = {}
        self._calls = 0

    async def acquire(self, specs: Sequence[RateSpec], n: int = 1) -> Grant:
        return self.acquire_now(specs, n)

    def acquire_now(self, specs: Sequence[RateSpec], n: int = 1) -> Grant:
        """:meth:`acquire` without the coroutine (same semantics)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        now = self._clock()
        at = now / 1e9
        if n == 0:
            return Grant(0, 0.0, 0.0, at)
        # Per spec: (key, limit L, period P in ns, burst); cached, specs are frozen.
        params = self._params
        rows: dict[str, tuple[int, int, int]] = {}
        for spec in specs:
            p = params.get(spec)
            if p is None:
                if len(params) > 65536:
                    params.clear()
                p = params[spec] = (spec.key, spec.limit, spec.period_us * 1000, spec.burst)
            rows[p[0]] = p[1:]
        if not rows:
            return Grant(n, 0.0, 0.0, at)
        # Scaled: tat_s = tat_ns * L; one token adds P; the tolerance is (burst - 1) * P.
        state = self._tat
        tats: list[int] = []
        granted = min_burst = n
        for key, (lim, per, burst) in rows.items():
            old = state.get(key)
            now_s = now * lim
            tat = old[0] if old is not None and old[0] > now_s else now_s
            tats.append(tat)
            fit = (now_s + (burst - 1) * per - tat) // per + 1
            if fit < granted:
                granted = fit
            if burst < min_burst:
                min_burst = burst
        if granted < 0:
            granted = 0
        if granted:
            for i, (key, (lim, per, _)) in enumerate(rows.items()):
                tats[i] += granted * per
                state[key] = (tats[i], lim)

        def wait(m: int) -> float:
            worst = 0
            for i, (lim, per, burst) in enumerate(rows.values()):
                t = _ceil_div(tats[i] + (m - burst) * per, lim) - now
                if t > worst:
                    worst = t
            return worst / 1e9

        rest = n - granted
        retry = max(wait(min(rest, min_burst)), 1e-9) if rest else 0.0
        nxt = wait(min(n, min_burst))
        self._calls += 1
        if self._calls % self.PRUNE_EVERY == 0:
            self._prune(now)
        return Grant(granted, retry, nxt, at)

    def _prune(self, now: int) -> None:
        # A state whose TAT has passed is the same as no state at all.
        stale = [k for k, (tat, lim) in self._tat.items() if tat <= now * lim]
        for k in stale:
            del self._tat[k]

    async def lease(self, spec: ConcurrencySpec, holder: str) -> Lease | Grant:
        now = self._clock()
        table = self._leases.setdefault(spec.key, {})
        for lid in [lid for lid, exp in table.items() if exp <= now]:
            del table[lid]
        if len(table) < spec.limit:
            lid = lease_id(holder)
            exp = now + spec.ttl_us * 1000
            table[lid] = exp
            return Lease(self, spec, holder, lid, exp / 1e9)
        first = min(table.values())
        return Grant(0, min((first - now) / 1e9, self.lease_poll), 0.0, now / 1e9)

    async def _renew(self, lease: Lease) -> bool:
        now = self._clock()
        table = self._leases.get(lease.spec.key, {})
        exp = table.get(lease.id)
        if exp is None or exp <= now:
            table.pop(lease.id, None)
            return False
        exp = now + lease.spec.ttl_us * 1000
        table[lease.id] = exp
        lease.expires = exp / 1e9
        return True

    async def _release(self, lease: Lease) -> None:
        table = self._leases.get(lease.spec.key)
        if table is not None:
            table.pop(lease.id, None)
            if not table:
                del self._leases[lease.spec.key]

    def held(self, spec: ConcurrencySpec) -> int:
        """Live leases of ``spec`` now (for tests and progress displays)."""
        now = self._clock()
        return sum(1 for exp in self._leases.get(spec.key, {}).values() if exp > now)

    async def close(self) -> None:
        self._tat.clear()
        self._leases.clear()
