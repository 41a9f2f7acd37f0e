"""The scheduler: per-site ready queues, throttled, over pipelined sessions.

Messages are queued by destination *site* (domains whose MX host sets are
the same share one queue, so gmail.com and googlemail.com do). Each site
runs up to ``connections`` session workers. A worker takes a batch from its
queue only after the throttles grant it: the site's rate (GCRA, after any
reply-driven slowdown), the job's rate, and a connection lease. The lower
limit wins; being throttled is a wait for ``retry_after``, never an error.

Replies are classified once (:mod:`mailsflux.delivery.bounce`): delivered, bounced
(permanent), or deferred and retried with exponential backoff and jitter
until ``max_age``, after which the message bounces as expired.

A refusal of our own setup (``sender_config``: the sender address, the
HELO/EHLO name, or any refusal of MAIL FROM, which names only our sender)
is never a recipient's bounce: the message fails (5xx) or defers and is
retried (4xx: "verification in progress", a DNS hiccup at the receiver).
When ``stop_after`` (5) permanent ones come in a row at one site with no
delivery between, each a separate refusal (a reply, or a refused
connection however many messages it failed), the site is stopped: one line
on stderr says the sender's setup is the problem, and every other message
for the site is reported failed with that reason instead of being tried.
``stop_after=0`` turns this off. A site is an MX host set: with a relay
the whole job is one site, and Google Workspace or Microsoft 365 tenants
share one.

A recorded outcome is final: the result callback is called once per
message (or, given ``on_delivered``, a batch whose every message was
delivered is handed over in one call), and a callback that raises is
reported once and does not undo or repeat a delivery. A throttle backend
outage (Redis down) is a wait with backoff, reported once; what waits
meanwhile defers by the usual rules.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias

import msgspec

from mailsflux._aio import wait_event
from mailsflux.delivery._enqueue import queue_run as _queue_run
from mailsflux.delivery._enqueue import take as _queue_take
from mailsflux.delivery._results import all_delivered as _all_delivered
from mailsflux.delivery._results import delivered as _delivered_results
from mailsflux.delivery._results import messages as _messages
from mailsflux.delivery._smtpfast import enhanced_prefix as _enhanced_prefix
from mailsflux.delivery.bounce import Category, Classification, classify, find_enhanced_status
from mailsflux.delivery.leases import LeaseKeeper
from mailsflux.delivery.mx import MXResolver, Route, RoutingError, Target
from mailsflux.delivery.shaping import Shaper
from mailsflux.delivery.smtp import Outcome, Reply, SessionError, SMTPSession, TLSMode
from mailsflux.delivery.throttle import (
    ConcurrencySpec,
    Grant,
    Lease,
    LocalThrottles,
    RateSpec,
    Throttles,
)
from mailsflux.errors import (
    PermanentDeliveryError,
    SchedulerClosedError,
    TemporaryDeliveryError,
    ThrottleBackendError,
)
from mailsflux.types import DeliveryResult, DeliveryStatus, RenderedMessage

if TYPE_CHECKING:
    # Annotations only: a scheduler without a TLS policy (a relay, no MTA-STS
    # or DANE) never loads the policy code (x509, an HTTP client).
    from mailsflux.delivery.tlspolicy import DomainTLS, TLSPolicies

# Messages a worker asks the throttles for at once: one grant per batch keeps
# the Redis backend at 1/BATCH round trips a message.
BATCH = 32
#: Refusals of our own setup in a row (no delivery between) that stop a site.
STOP_AFTER = 5

# Categories that blame the recipient. MAIL FROM names only our sender, so a
# refusal there in these words is about our sender, never the recipient.
_RECIPIENT_BLAME = frozenset(
    {Category.BAD_MAILBOX, Category.BAD_DOMAIN, Category.MAILBOX_FULL, Category.OTHER_PERMANENT}
)


def classify_outcome(o: Outcome) -> Classification:
    """Classify a reply, knowing the stage it answered (MAIL, RCPT, ...)."""
    c = classify(o.code, o.text)
    if o.stage == "mail" and c.category in _RECIPIENT_BLAME:
        return msgspec.structs.replace(
            c, category=Category.SENDER_CONFIG, suppress=False, rule=f"mail-stage:{c.rule}"
        )
    return c


def _stops(c: Classification) -> bool:
    """Counts toward stopping a site: a permanent refusal of our own setup.
    A temporary one (4xx) is retried like any other deferral."""
    return c.category is Category.SENDER_CONFIG and c.permanent


class SiteLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Limits for one site; 0 means unlimited for ``rate``."""

    rate: float = 0.0  # messages per second
    burst: int = BATCH
    connections: int = 4
    messages_per_connection: int = 1000
    tls: Literal["opportunistic", "required", "none", "implicit"] = "opportunistic"


class RetryPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    initial: float = 5.0
    factor: float = 2.0
    max_delay: float = 300.0
    #: After this many seconds from the first attempt a message bounces as expired.
    max_age: float = 900.0
    #: Attempts within this run; after the last a message is reported deferred
    #: (still temporary when the job ends).
    attempts: int = 1_000_000

    def delay(self, attempts: int) -> float:
        base = min(self.initial * self.factor ** max(attempts - 1, 0), self.max_delay)
        return base * (0.5 + random.random())  # jitter: +-50 %


#: A domain's cached route, TLS policy (None: none applies) and queue key, as
#: one batch of :meth:`Scheduler._place_cached` sees it; None: not cached.
_Hit: TypeAlias = "tuple[Route, DomainTLS | None, str] | None"


class _Item(msgspec.Struct, eq=False, gc=False):
    """A message in the scheduler's care. Made in C (a Python __init__ was a
    frame a message); eq=False: items are told apart by identity."""

    msg: RenderedMessage
    first: float
    attempts: int = 0
    #: This take's outcome is settled (final, deferred or requeued): a
    #: worker that fails afterwards must not handle it again.
    done: bool = False


class _Stopped(msgspec.Struct, frozen=True):
    """Why a site was stopped, as every message it still held is told."""

    status: DeliveryStatus
    code: int | None
    reply: str
    c: Classification


class _Site:
    def __init__(
        self, key: str, route: Route, limits: SiteLimits, lease_ttl: float, limit_key: str = ""
    ) -> None:
        self.key = key
        #: What throttle, concurrency and shaper count on: the route's site,
        #: shared by the policy queues of every domain routed to it (a policy
        #: queue must not multiply the site's limits).
        self.limit_key = limit_key or key
        self.route = route
        self.limits = limits
        self.queue: deque[_Item] = deque()
        self.workers = 0
        self.wake = asyncio.Event()
        self.conn_spec = ConcurrencySpec(
            f"site:{self.limit_key}", limits.connections, ttl=lease_ttl
        )
        #: Refusals of our own setup since the last delivery.
        self.own_faults = 0
        self.stopped: _Stopped | None = None
        #: The domain's DANE or MTA-STS policy (a policy site holds one domain).
        self.tls: DomainTLS | None = None


class Scheduler:
    """Deliver submitted messages by site, within every limit that applies."""

    def __init__(
        self,
        resolver: MXResolver,
        on_result: Callable[[DeliveryResult], None],
        *,
        throttles: Throttles | None = None,
        default_limits: SiteLimits | None = None,
        domain_limits: Mapping[str, SiteLimits] | None = None,
        job: str = "",
        job_rate: float = 0.0,
        job_burst: int = BATCH,
        retry: RetryPolicy | None = None,
        shaper: Shaper | None = None,
        timeout: float = 30.0,
        data_timeout: float | None = None,
        credentials: tuple[str, str] | None = None,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        max_queued: int = 4096,
        idle_timeout: float = 5.0,
        linger: float | None = None,
        stop_after: int = STOP_AFTER,
        lease_ttl: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        # A cached route is taken without a coroutine per message, unless a
        # subclass changed how routes are resolved.
        cls = type(resolver)
        self._cached_route: Callable[[str], Route | None] | None = (
            resolver.cached
            if getattr(cls, "resolve", None) is MXResolver.resolve
            and getattr(cls, "cached", None) is MXResolver.cached
            else None
        )
        self.on_result = on_result
        self.throttles = throttles if throttles is not None else LocalThrottles()
        self.default_limits = default_limits or SiteLimits()
        self.domain_limits = {k.lower(): v for k, v in (domain_limits or {}).items()}
        self.job = job
        self.job_spec = _rate_spec(f"job:{job or 'job'}", job_rate, job_burst) if job_rate else None
        self.retry = retry or RetryPolicy()
        self.shaper = shaper if shaper is not None else Shaper()
        self.timeout = timeout
        self.data_timeout = data_timeout
        self.credentials = credentials
        self.local_hostname = local_hostname or socket.getfqdn() or "localhost"
        #: Checks certificates where they are checked (a private CA: tls_ca).
        self.tls_context = tls_context
        #: DANE and MTA-STS per destination domain (direct MX delivery).
        self.tls_policy: TLSPolicies | None = None
        self.max_queued = max_queued
        self.idle_timeout = idle_timeout
        # How long a worker waits for a short queue to fill to a whole batch
        # before asking the throttles: a remote (Redis) grant costs a round
        # trip, so it should cover a batch, not a message or two.
        remote = not isinstance(self.throttles, LocalThrottles)
        self.linger = linger if linger is not None else (0.01 if remote else 0.0)
        self.stop_after = stop_after
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.holder = f"{socket.gethostname()}:{secrets.token_hex(4)}"
        self._sites: dict[str, _Site] = {}
        self._open = 0  # submitted and not yet final
        self._queued = 0  # waiting in site queues
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[asyncio.TimerHandle, _Item] = {}
        self._closing = False
        self._closed = False
        self._close_done = False
        self._aborted = False
        #: Results the callback raised on (reported once on stderr).
        self.callback_failures = 0
        self._backend_failing = False
        self._backend_wait = 0.0
        #: Addresses not to mail; checked again before every retry.
        self.suppressed: Container[str] | None = None
        #: Where a message goes when this run gives up on it for now (a
        #: spool): called with the message and the wall time of its first
        #: attempt just before its "deferred" result. With it, a message
        #: waiting for an in-run retry beyond ``max_waiting`` is given up at
        #: once instead of held; without it, waiting messages count toward
        #: ``max_queued`` (back-pressure on submit).
        self.park: Callable[[RenderedMessage, float], None] | None = None
        self.max_waiting = max_queued * 4
        #: Called after each batch's outcomes are handled, before the session
        #: sends anything more (a spool commits the batch's results there).
        self.after_batch: Callable[[], None] | None = None
        #: Given, a batch whose every message was delivered reports them
        #: in one call, in order, instead of ``on_result`` once each (the
        #: common case, recorded without a call chain a message). It must
        #: handle each result as ``on_result`` would.
        self.on_delivered: Callable[[list[DeliveryResult]], None] | None = None
        self._waiting = 0  # waiting in memory for an in-run retry
        self._draining = False

    # -- public ---------------------------------------------------------------

    async def submit(self, msg: RenderedMessage) -> None:
        """Queue one message; waits while too many are queued (back-pressure)."""
        while True:
            # Checked again after each wait: abort() wakes waiters, and a
            # message must not slip in after the scheduler closed.
            if self._closed:
                how = "abort()" if self._aborted else "close()"
                raise SchedulerClosedError(
                    f"submit() after {how}: the scheduler takes no more mail"
                )
            if self._queued < self._capacity():
                break
            self._room.clear()
            await self._room.wait()
        if self._place_cached((msg,), 0):
            return  # its route and TLS policy were cached: queued at once
        self._open += 1
        self._idle.clear()
        item = _Item(msg, self.clock())
        try:
            await self._enqueue(item, msg.domain)
        except BaseException:
            # Cancelled (or failed) during the route lookup: the item is in no
            # queue and has no result, so it must not be counted as open, or
            # close() would wait for it forever.
            if not item.done:
                self._open -= 1
                if self._open == 0:
                    self._idle.set()
            raise

    async def submit_many(self, msgs: Sequence[RenderedMessage]) -> None:
        """:meth:`submit` each of ``msgs``, in order. Those that find room and
        a cached route are queued in one pass, without a coroutine each and
        with one route lookup per domain; the others wait as submit() does."""
        i, n = 0, len(msgs)
        while i < n:
            i = self._place_cached(msgs, i)
            if i < n:
                await self.submit(msgs[i])
                i += 1

    def _place_cached(self, msgs: Sequence[RenderedMessage], i: int) -> int:
        """Queue ``msgs[i:]`` while there is room and their routes (and TLS
        policies) are cached; returns the index of the first left to submit().
        submit()'s own fast path, without a coroutine."""
        if self._cached_route is None or self._closed:
            return i
        room = self._capacity()
        # A batch spans microseconds: a route cached at its start stands for all of it.
        routes: dict[str, _Hit] = {}
        look = self._look
        place, n, now = self._place, len(msgs), self.clock()
        # The site the message before was queued at (None: stopped): a
        # message for the same site, whose TLS policy would change nothing
        # there, joins its queue directly (_queue_run decides which do).
        # Nothing can stop a site while this runs (no await).
        site: _Site | None = None
        while i < n and self._queued < room:
            if site is not None:
                # A run bound for the same queue, in one compiled call.
                stop = min(n, i + room - self._queued)
                j = _queue_run(
                    msgs, i, stop, routes, site.key, site.tls, site.queue, _Item, now, look
                )
                if j > i:
                    # As submit(): counted open (idle is set exactly when
                    # none is open, so only the first open one clears it).
                    self._open += j - i
                    if self._open == j - i:
                        self._idle.clear()
                    self._queued += j - i
                    i = j
                    continue
            msg = msgs[i]
            domain = msg.domain
            # Looked up already by the run above, unless this is the first.
            hit = routes[domain] if domain in routes else look(routes, domain)
            if hit is None:
                break
            # Bound for another queue: placed as submit() places it, counted
            # open first (placing may settle it at once, a stopped site, and
            # set idle again).
            self._open += 1
            if self._open == 1:
                self._idle.clear()
            if site is not None:
                self._woken(site)
            place(_Item(msg, now), domain, *hit)
            site = self._sites[hit[2]]
            if site.stopped is not None:
                site = None
            i += 1
        if site is not None:
            self._woken(site)
        return i

    def _look(self, routes: dict[str, _Hit], domain: str) -> _Hit:
        """``domain``'s cached route, TLS policy and queue key, entered in
        ``routes`` (None: not cached, to be looked up by submit())."""
        assert self._cached_route is not None
        route = self._cached_route(domain)
        placed = self._policy_now(route) if route is not None else None
        hit = routes[domain] = None if route is None or placed is None else (route, *placed)
        return hit

    def _woken(self, site: _Site) -> None:
        """Messages were queued at ``site`` without :meth:`_place`: what it
        does after each, once (as many workers as a message at a time adds)."""
        site.wake.set()
        while self._spawn(site):
            pass

    async def close(self) -> None:
        """Wait until every submitted message has its final result.

        Once it has returned (or after :meth:`abort`) it raises; a close()
        that was cancelled (a timeout around it) may be called again, and
        goes on waiting where the first left off.
        """
        if self._aborted:
            raise SchedulerClosedError("close() after abort(): the scheduler was stopped")
        if self._close_done:
            raise SchedulerClosedError("close() called twice: the scheduler is already closed")
        self._closed = True
        await self._idle.wait()
        self._closing = True
        for site in self._sites.values():
            site.wake.set()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._close_done = True

    async def abort(self) -> None:
        """Stop now (the job failed before close): sessions end, retries are dropped."""
        self._closed = self._closing = self._aborted = True
        self._room.set()  # a submit() waiting for room raises instead of hanging
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for site in self._sites.values():
            site.wake.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, grace: float, hard: asyncio.Event | None = None) -> None:
        """Stop gently: take no more batches, let those in flight finish (up
        to ``grace`` seconds, or until ``hard`` is set), hand messages
        waiting for a retry to :attr:`park` as deferred, then :meth:`abort`.
        Messages still queued get no result: their rows were never tried."""
        self._closed = self._draining = True
        self._room.set()
        waiting = list(self._timers.items())
        self._timers.clear()
        for handle, item in waiting:
            handle.cancel()
            self._waiting -= 1
            if self.park is not None:
                self._final(item, "deferred", None, "the job stopped before its next attempt")
        for site in self._sites.values():
            site.wake.set()
        tasks = list(self._tasks)
        if tasks:
            waits: set[asyncio.Future[object]] = {asyncio.ensure_future(asyncio.wait(tasks))}
            if hard is not None:
                waits.add(asyncio.ensure_future(hard.wait()))
            _, rest = await asyncio.wait(waits, timeout=grace, return_when="FIRST_COMPLETED")
            for f in rest:
                f.cancel()
        await self.abort()

    @property
    def sites(self) -> dict[str, int]:
        """Queued messages per site (for status displays)."""
        return {k: len(s.queue) for k, s in self._sites.items()}

    # -- queues ---------------------------------------------------------------

    def _limits_for(self, domain: str, route: Route) -> SiteLimits:
        for key in (domain, route.site_name or "", route.site_key):
            if key and key.lower() in self.domain_limits:
                return self.domain_limits[key.lower()]
        return self.default_limits

    def site_stats(self) -> dict[str, tuple[int, int]]:
        """Per site: messages waiting in its queue, and its open sessions (workers)."""
        return {k: (len(site.queue), site.workers) for k, site in self._sites.items()}

    async def _enqueue(self, item: _Item, domain: str | None = None) -> None:
        if domain is None:
            domain = item.msg.domain
        try:
            route = await self.resolver.resolve(domain)
        except RoutingError as exc:
            if exc.permanent:
                self._final(item, "bounced", exc.code, exc.message, enhanced=exc.enhanced_status)
            else:
                self._defer(item, exc.code, exc.message)
            return
        placed = self._policy_now(route)
        if placed is None:
            assert self.tls_policy is not None
            try:
                tls = await self.tls_policy.lookup(route)
            except Exception as exc:  # a fault of ours: defer, never send unchecked
                self._defer(item, None, f"TLS policy lookup failed: {type(exc).__name__}")
                return
            placed = _keyed(route, tls)
        self._place(item, domain, route, *placed)

    def _policy_now(self, route: Route) -> tuple[DomainTLS | None, str] | None:
        """The TLS policy (None: none applies) and queue key for ``route``;
        None when its policy is not cached and must be looked up first."""
        if self.tls_policy is None or route.kind not in ("mx", "implicit"):
            return None, route.site_key
        tls = self.tls_policy.cached(route)
        return None if tls is None else _keyed(route, tls)

    def _place(
        self, item: _Item, domain: str, route: Route, tls: DomainTLS | None, key: str
    ) -> None:
        """Queue ``item`` at the site ``key`` of its route (or settle it, if stopped)."""
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = _Site(
                key, route, self._limits_for(domain, route), self.lease_ttl, route.site_key
            )
        if tls is not None and site.tls is not tls:
            # The policy and the route it was looked up for go together: a
            # changed MX must not meet the old hosts' policy.
            site.tls, site.route = tls, route
        if site.stopped is not None:
            self._final_stopped(site, item)
            return
        site.queue.append(item)
        self._queued += 1
        site.wake.set()
        self._spawn(site)

    def _spawn(self, site: _Site) -> bool:
        """One more worker while the queue holds more than the workers can
        batch; True when one was started."""
        if site.workers < site.limits.connections and len(site.queue) > site.workers * BATCH // 2:
            site.workers += 1
            task = asyncio.ensure_future(self._worker(site))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        return False

    def _take(self, site: _Site, n: int) -> list[_Item]:
        batch = _queue_take(site.queue, n)
        self._queued -= len(batch)
        self._make_room()
        return batch

    def _capacity(self) -> int:
        """How many may be queued: ``max_queued``, less those waiting in
        memory for an in-run retry unless they are parked instead."""
        return self.max_queued - (0 if self.park else self._waiting)

    def _make_room(self) -> None:
        if self._queued < self._capacity():
            self._room.set()

    # -- outcomes -------------------------------------------------------------

    def _final(
        self,
        item: _Item,
        status: DeliveryStatus,
        code: int | None,
        text: str,
        c: Classification | None = None,
        enhanced: str | None = None,
    ) -> None:
        if c is None and enhanced is None and code is not None and 200 <= code < 300:
            # A 2xx is "delivered" whatever its text (the classifier's first
            # rule); only its enhanced status is read: the rule table,
            # Classification and its checks are not needed on every message.
            category, enhanced = "delivered", find_enhanced_status(text)
        else:
            c = c or classify(code, text, enhanced)
            category, enhanced = str(c.category), c.enhanced_status
        result = _result(item, status, code, text, enhanced, category)
        item.done = True
        if status == "deferred" and self.park is not None:
            try:
                self.park(item.msg, time.time() - (self.clock() - item.first))
            except Exception:
                self.callback_failures += 1
        try:
            self.on_result(result)
        except Exception as exc:
            self._callback_failed(exc)
        finally:
            # Counted as final even if the caller's callback fails: close() never hangs.
            self._open -= 1
            if self._open == 0:
                self._idle.set()

    def _delivered(self, site: _Site, batch: list[_Item], outcomes: list[Outcome]) -> None:
        """:meth:`_outcome` for a batch's first ``len(outcomes)`` items, all
        delivered: their results reach ``on_delivered`` in one call."""
        site.own_faults = 0
        # As _final makes them (through _result), in compiled code.
        results = _delivered_results(
            batch, outcomes, DeliveryResult, find_enhanced_status, _enhanced_prefix
        )
        assert self.on_delivered is not None
        try:
            self.on_delivered(results)
        except Exception as exc:
            self._callback_failed(exc, len(results))
        finally:
            self._open -= len(results)
            if self._open == 0:
                self._idle.set()

    def _callback_failed(self, exc: Exception, results: int = 1) -> None:
        # The outcome stands (a delivered message is never sent again);
        # the caller's bookkeeping failed, which it must hear about once.
        first = self.callback_failures == 0
        self.callback_failures += results
        if first:
            print(
                f"mailsflux: the result callback failed ({type(exc).__name__}: {exc}); "
                "delivery goes on, results it could not record are not repeated",
                file=sys.stderr,
            )

    def _defer(self, item: _Item, code: int | None, text: str) -> None:
        item.done = True
        item.attempts = max(item.attempts, 1)
        if (
            item.attempts >= self.retry.attempts
            or self._draining
            or (self.park is not None and self._waiting >= self.max_waiting)
        ):
            self._final(item, "deferred", code, text)
            return
        delay = self.retry.delay(item.attempts)
        age = self.clock() - item.first
        if age + delay > self.retry.max_age:
            self._final(item, "bounced", code, f"expired after {item.attempts} attempts: {text}")
            return
        loop = asyncio.get_running_loop()

        async def requeue() -> None:
            self._waiting -= 1
            self._make_room()
            try:
                if self.suppressed is not None and item.msg.rcpt_to in self.suppressed:
                    self._final(item, "skipped", None, "suppressed while waiting for a retry")
                    return
                await self._enqueue(item)
            except Exception as exc:  # never lose the message
                self._final(item, "failed", None, f"internal error: {type(exc).__name__}: {exc}")

        def again() -> None:
            self._timers.pop(handle, None)
            task = asyncio.ensure_future(requeue())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(delay, again)
        self._timers[handle] = item
        self._waiting += 1

    def _outcome(self, site: _Site, item: _Item, o: Outcome) -> None:
        item.attempts += 1
        if o.status == "delivered":
            site.own_faults = 0
            self._final(item, "delivered", o.code, o.text)
            return
        c = classify_outcome(o)
        if o.code is not None:
            self.shaper.observe(site.limit_key, (o.code, o.text), self.clock())
        self._failed(item, o.code, o.text, c, bounce=o.status == "bounced" or c.permanent)
        self._refused_ours(site, o.code, o.text, c)

    def _failed(
        self, item: _Item, code: int | None, text: str, c: Classification, bounce: bool
    ) -> None:
        """One failed try; ``bounce``: final unless the fault is our own setup."""
        if c.category is not Category.SENDER_CONFIG:
            if bounce:
                self._final(item, "bounced", code, text, c)
            else:
                self._defer(item, code, text)
            return
        # Our sender address or HELO name was refused: the recipient is not
        # to blame, so it is never a bounce (and never suppresses anyone).
        if c.permanent:
            self._final(item, "failed", code, text, c)
        else:
            self._defer(item, code, text)

    def _refused_ours(self, site: _Site, code: int | None, text: str, c: Classification) -> None:
        """One refusal event (a reply, a refused connection): count it toward the stop."""
        if self.stop_after <= 0 or not _stops(c):
            return
        site.own_faults += 1
        if site.own_faults >= self.stop_after and site.stopped is None:
            self._stop_site(site, code, text, c)

    def _stop_site(self, site: _Site, code: int | None, text: str, c: Classification) -> None:
        reply = " ".join(f"{code or ''} {text}".split())[:300]
        status: DeliveryStatus = "failed" if c.permanent else "deferred"
        site.stopped = _Stopped(status, code, reply, c)
        print(
            f"mailsflux: site {site.key}: stopped: {site.own_faults} refusals in a row were "
            f"for our own sender setup (sender address or HELO/EHLO name), not for "
            f"their recipients: {reply}; fix the sender's configuration. The site's other "
            f"messages are reported {status} and nobody is suppressed",
            file=sys.stderr,
        )
        for item in self._take(site, len(site.queue)):
            self._final_stopped(site, item)
        site.wake.set()

    def _final_stopped(self, site: _Site, item: _Item) -> None:
        st = site.stopped
        assert st is not None
        text = f"not sent: site stopped after {self.stop_after} refusals of our sender setup: "
        self._final(item, st.status, st.code, text + st.reply, st.c)

    def _requeue_front(self, site: _Site, items: list[_Item]) -> None:
        """Untried items go back first in line (or, at a stopped site, get its reason)."""
        for item in items:
            item.done = True
        if site.stopped is not None:
            for item in items:
                self._final_stopped(site, item)
            return
        site.queue.extendleft(reversed(items))
        self._queued += len(items)
        site.wake.set()

    # -- workers --------------------------------------------------------------

    def _site_rate(self, site: _Site) -> RateSpec | None:
        base = site.limits.rate
        now = self.clock()
        rate = self.shaper.effective_rate(site.limit_key, base if base else math.inf, now)
        if math.isinf(rate):
            return None
        return _rate_spec(f"site:{site.limit_key}", rate, site.limits.burst)

    async def _grant(self, site: _Site, n: int) -> int:
        """Wait for throttle grants (site, job) for up to ``n`` messages."""
        if n <= 0:
            return 0
        while True:
            until = self.shaper.suspended_until(site.limit_key, self.clock())
            if until is not None:
                await asyncio.sleep(max(until - self.clock(), 0.01))
                continue
            specs = [s for s in (self._site_rate(site), self.job_spec) if s is not None]
            if not specs:
                return n
            grant: Grant = await self.throttles.acquire(specs, n)
            self._backend_back()
            if grant.granted:
                return grant.granted
            await asyncio.sleep(max(grant.retry_after, 0.001))

    def _throttled(self, site: _Site) -> bool:
        return bool(site.limits.rate) or self.job_spec is not None

    async def _fill(self, site: _Site) -> None:
        """Wait up to ``linger`` for the queue to hold a whole batch."""
        deadline = self.clock() + self.linger
        while len(site.queue) < BATCH and not self._closing:
            left = deadline - self.clock()
            if left <= 0:
                return
            site.wake.clear()
            if not await wait_event(site.wake, left):
                return

    async def _lease(self, site: _Site) -> Lease | None:
        while site.queue and not self._closing:
            got = await self.throttles.lease(site.conn_spec, self.holder)
            self._backend_back()
            if isinstance(got, Lease):
                return got
            await asyncio.sleep(max(got.retry_after, 0.01))
        return None

    async def _connect(self, site: _Site) -> SMTPSession:
        """A session to the first target that answers, in MX preference order."""
        last: TemporaryDeliveryError | None = None
        user, password = self.credentials or (None, None)
        tls: TLSMode = site.limits.tls
        if site.tls is not None and self.tls_policy is not None:

            async def open_(
                target: Target,
                mode: TLSMode,
                ctx: ssl.SSLContext | None,
                check: Callable[[ssl.SSLObject], str | None] | None,
            ) -> SMTPSession:
                return await SMTPSession.open(
                    target.host,
                    target.port,
                    address=target.address,
                    tls=mode,
                    timeout=self.timeout,
                    data_timeout=self.data_timeout,
                    local_hostname=self.local_hostname,
                    tls_context=ctx or self.tls_context,
                    tls_check=check,
                )

            session = await self.tls_policy.connect(site.tls, site.route, open_, tls)
            assert isinstance(session, SMTPSession)
            return session
        for target in site.route.targets():
            try:
                return await SMTPSession.open(
                    target.host,
                    target.port,
                    address=target.address,
                    tls=tls,
                    username=user,
                    password=password,
                    timeout=self.timeout,
                    data_timeout=self.data_timeout,
                    local_hostname=self.local_hostname,
                    tls_context=self.tls_context,
                )
            except PermanentDeliveryError:
                raise
            except TemporaryDeliveryError as exc:
                last = exc
        raise last or TemporaryDeliveryError(f"site {site.key}: no host to connect to")

    async def _wait_for_work(self, site: _Site) -> bool:
        """Wait until the site's queue holds something; False: the worker should end."""
        if self._draining:
            return False
        while not site.queue:
            if self._closing or site.stopped is not None:
                return False
            site.wake.clear()
            if not await wait_event(site.wake, self.idle_timeout):
                return False
        return site.stopped is None

    async def _backend_failed(self, site: _Site, exc: ThrottleBackendError) -> None:
        """Nothing can be granted: what waits here defers (one attempt), then back off."""
        if not self._backend_failing:
            self._backend_failing = True
            print(
                f"mailsflux: {exc.message}; waiting for it with backoff. Nothing is sent "
                "without a grant: messages defer meanwhile and expire by the usual rules",
                file=sys.stderr,
            )
        for item in self._take(site, len(site.queue)):
            item.attempts += 1
            self._defer(item, None, f"throttle backend unavailable: {exc.message}")
        self._backend_wait = min(max(self._backend_wait * 2, 0.05), 5.0)
        await asyncio.sleep(self._backend_wait * (0.5 + random.random()))

    def _backend_back(self) -> None:
        """A backend call just succeeded (only then: a worker that needed no
        call proves nothing, and would print this between outage lines)."""
        if self._backend_failing:
            self._backend_failing = False
            self._backend_wait = 0.0
            print("mailsflux: the throttle backend answers again", file=sys.stderr)

    async def _worker(self, site: _Site) -> None:
        session: SMTPSession | None = None
        keeper: LeaseKeeper | None = None
        pending: list[_Item] = []  # taken from the queue, outcome not yet handled

        async def hold_lease() -> bool:
            """A live lease; False: none to be had (the scheduler is closing)."""
            nonlocal session, keeper
            if keeper is not None and keeper.lost:
                # The lease ran out under us and the slot may be someone
                # else's now: this session takes no more batches.
                if session is not None:
                    await session.quit()
                    session = None
                await keeper.stop()
                keeper = None
            if keeper is None:
                lease = await self._lease(site)
                if lease is None:
                    return False
                keeper = LeaseKeeper(lease)
            return True

        try:
            while await self._wait_for_work(site):
                mpc = site.limits.messages_per_connection
                try:
                    if not await hold_lease():
                        continue
                    if self.linger and len(site.queue) < BATCH and self._throttled(site):
                        await self._fill(site)
                        if not site.queue:  # another worker took it meanwhile
                            continue
                    if session is not None and session.sent >= mpc:
                        await session.quit()
                        session = None
                    room = mpc - (session.sent if session else 0)
                    n = await self._grant(site, min(BATCH, room, len(site.queue)))
                    # Again after the grant: its wait can outlast the lease.
                    # The grant stands; only the slot (and session) is renewed.
                    if not await hold_lease():
                        continue
                    if self._draining:
                        break
                except ThrottleBackendError as exc:
                    await self._backend_failed(site, exc)
                    continue
                if session is not None and not session.is_open:
                    # Checked after the grant, not before: the wait for it may
                    # be long enough for the server to close an idle session.
                    farewell = session.farewell()
                    session.close()
                    session = None
                    await self._parting(site, farewell)
                pending = self._take(site, n)
                if pending:
                    try:
                        session = await self._send_batch(site, session, pending)
                    finally:
                        self._settled()
                    pending = []
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a fault must never lose a message
            # An unexpected failure (a bug): what this worker took and had
            # not settled is deferred, not dropped; settled outcomes stand.
            print(
                f"mailsflux: site {site.key}: worker failed: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
            if session is not None:
                session.close()
                session = None
            for item in pending:
                if not item.done:
                    item.attempts += 1
                    self._defer(item, None, f"internal error: {type(exc).__name__}")
            # The site gets a fresh worker, but not in a tight loop.
            await asyncio.sleep(min(self.retry.initial, 1.0))
        finally:
            site.workers -= 1
            if session is not None:
                await session.quit()
            if keeper is not None:
                await keeper.stop()
            if site.queue and not self._closing and not self._draining:
                self._spawn(site)

    async def _send_batch(
        self, site: _Site, session: SMTPSession | None, batch: list[_Item]
    ) -> SMTPSession | None:
        """Send ``batch``; every item gets its outcome. Returns the session to reuse."""
        reused = session is not None
        try:
            if session is None:
                session = await self._connect(site)
            outcomes = await session.send(_messages(batch), stop=self._stopper(site))
        except SessionError as exc:
            if reused and exc.closed and not exc.completed:
                # A session we kept was closed by the server before it said a
                # word to this batch: our staleness costs no message an attempt.
                self._requeue_front(site, batch)
                await self._parting(site, exc.reply)
                return None
            if exc.reply is not None:
                self.shaper.observe(site.limit_key, (exc.reply.code, exc.reply.text), self.clock())
            for item, outcome in zip(batch, exc.completed, strict=False):
                self._outcome(site, item, outcome)
            for item in batch[len(exc.completed) :]:
                item.attempts += 1
                self._defer(item, None, exc.message)
            return None
        except (TemporaryDeliveryError, PermanentDeliveryError) as exc:
            c = classify(exc.code, exc.message, exc.enhanced_status)
            if exc.code is not None:
                self.shaper.observe(site.limit_key, (exc.code, exc.message), self.clock())
            for item in batch:
                item.attempts += 1
                self._failed(item, exc.code, exc.message, c, bounce=exc.permanent)
            # One refused connection is one refusal, however many messages it failed.
            self._refused_ours(site, exc.code, exc.message, c)
            # A site that cannot be reached: back off before the next try.
            await asyncio.sleep(min(self.retry.initial, 1.0))
            return None
        if self.on_delivered is not None and _all_delivered(outcomes):
            self._delivered(site, batch, outcomes)
        else:
            for item, outcome in zip(batch, outcomes, strict=False):
                self._outcome(site, item, outcome)
        if len(outcomes) < len(batch):
            # The site throttled us (or was stopped) mid-batch: the rest were
            # never attempted; they go back to the front of the queue.
            self._requeue_front(site, batch[len(outcomes) :])
        return session

    def _settled(self) -> None:
        """A batch's outcomes are all handled: let the spool commit them
        before this session sends anything more."""
        if self.after_batch is not None:
            try:
                self.after_batch()
            except Exception:
                self.callback_failures += 1

    async def _parting(self, site: _Site, reply: Reply | None) -> None:
        """The server's last word as it closed a session (a 421): the shaper
        hears it, and the site gets a pause before the next connection."""
        if reply is None:
            return
        self.shaper.observe(site.limit_key, (reply.code, reply.text), self.clock())
        await asyncio.sleep(min(self.retry.initial, 1.0))

    def _stopper(self, site: _Site) -> Callable[[Outcome], bool]:
        """When to end a batch early: a throttling reply, or the site about to stop."""
        run = site.own_faults

        def stop(o: Outcome) -> bool:
            nonlocal run
            if o.status == "delivered":
                run = 0
                return False
            if o.code is None:
                return False
            if self.shaper.matching(site.limit_key, (o.code, o.text)):
                return True
            if self.stop_after <= 0:
                return False
            if _stops(classify_outcome(o)):
                run += 1
            return run >= self.stop_after

        return stop


def _result(
    item: _Item,
    status: DeliveryStatus,
    code: int | None,
    text: str,
    enhanced: str | None,
    category: str,
) -> DeliveryResult:
    """What became of ``item``'s message, as the result callbacks hear it."""
    msg = item.msg
    # DeliveryResult(recipient, message_id, status, code, enhanced_status,
    # reply, attempts, row, category): by position, one a message.
    return DeliveryResult(
        msg.rcpt_to,
        msg.message_id,
        status,
        code,
        enhanced,
        text.strip()[:500],
        max(item.attempts, 1),
        msg.row,
        category,
    )


def _keyed(route: Route, tls: DomainTLS) -> tuple[DomainTLS | None, str]:
    """A route's looked-up TLS policy (None for none) and its queue key."""
    if tls.kind == "none":
        return None, route.site_key
    # Its own queue: its sessions meet its policy, and are counted as its.
    return tls, f"{route.site_key}|tls:{route.domain}"


def _rate_spec(name: str, rate: float, burst: int) -> RateSpec:
    """``rate`` messages a second as an integer GCRA limit per period."""
    limit = max(1, int(rate))
    return RateSpec(name, limit, max(1, burst), limit / rate)
