"""Outbound TLS policy per destination domain, for direct MX delivery.

A domain's policy is looked up once per cache lifetime (the first message
to it waits for the lookup; the rest find it in a dict) and decides how its
sessions are opened:

- DANE (RFC 7672): the MX answer and the MX host's ``_PORT._tcp.HOST`` TLSA
  answer both carry the AD bit (the resolver validated them with DNSSEC:
  Mailsflux does no validation of its own, so the configured resolver must
  be a validating one on a trusted path, e.g. local unbound). A host with
  usable TLSA records gets STARTTLS or nothing, and its certificate must
  match them (:mod:`mailsflux.delivery.dane`); a failed TLSA lookup makes
  the host unusable; a host whose validated TLSA records are all unusable
  gets STARTTLS or nothing, unauthenticated (RFC 7672 2.2, Postfix's
  "encrypt"). DANE takes precedence over MTA-STS (RFC 8461 2) host by
  host: a host without TLSA records gets the domain's MTA-STS policy if it
  has one, else the site's usual TLS.
- MTA-STS (RFC 8461, :mod:`mailsflux.delivery.mtasts`): ``enforce`` uses
  only MX hosts the policy names, each with STARTTLS and a certificate
  valid for the host name (the system's CAs and ``[delivery] tls_ca``);
  ``testing`` tries that first, counts a failure and delivers as usual.
  A cached policy is fetched again once half its ``max_age`` (at most a
  day) has passed, even with an unchanged ``id`` (RFC 8461 5.1); if that
  fails the cached one stays in force.

A policy holds for the MX hosts it was looked up for: a route with other
hosts (the MX changed) is looked up again before any message goes.

When no host can be used as the policy says, the messages defer (a
temporary failure, 4.7.5): they are never sent in plain text or to an
unverified host. Every policy session's outcome is counted per domain in
:class:`mailsflux.types.TLSCounts` (TLS-RPT's result types, RFC 8460 4.3).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, NamedTuple

import dns.exception
import dns.name
import dns.rdatatype

from mailsflux._tls import client_context
from mailsflux.delivery.dane import TLSA, dane_check, usable
from mailsflux.delivery.mtasts import Policy, PolicyCache, fetch_policy, parse_policy, sts_id
from mailsflux.delivery.mx import _LRU, MXHost, MXResolver, Route, Target
from mailsflux.errors import PermanentDeliveryError, PolicyError, TemporaryDeliveryError
from mailsflux.types import TLSCounts

__all__ = ["DomainTLS", "Opener", "TLSPolicies", "result_type"]

#: How long a looked-up policy is kept in memory before DNS is asked again
#: (the TXT/TLSA TTL, clamped to this range).
MIN_REFRESH, MAX_REFRESH = 300.0, 3600.0
#: A cached MTA-STS policy is fetched again after half its max_age, and at
#: least this often (RFC 8461 5.1 suggests proactive refresh, e.g. daily).
REFETCH_EVERY = 86400.0


def _refetch(policy: Policy) -> float:
    """Seconds after its fetch that a cached policy is fetched again."""
    return min(policy.max_age / 2, REFETCH_EVERY)


class DomainTLS(NamedTuple):
    """What a domain's sessions must meet."""

    domain: str
    kind: Literal["dane", "sts", "none"]
    #: MTA-STS's policy (``kind == "sts"``): mode and MX patterns.
    policy: Policy | None
    #: DANE: usable TLSA records by MX host; ``()`` when the lookup failed.
    tlsa: dict[str, tuple[TLSA, ...]]
    #: DANE: hosts whose validated TLSA records are all unusable: TLS
    #: required, its peer unauthenticated (RFC 7672 2.2).
    encrypt: frozenset[str] = frozenset()
    #: The route's MX hosts this was looked up for, and whether its MX
    #: answer was DNSSEC-secure: another route needs its own lookup.
    mx: tuple[MXHost, ...] = ()
    secure: bool = False

    def fits(self, route: Route) -> bool:
        """Looked up for ``route``'s MX hosts (the per-message check: the
        resolver's cached Route is usually the very same tuple)."""
        if self.mx is route.mx_hosts:
            return self.secure == route.secure
        return self.secure == route.secure and [m.host for m in self.mx] == [
            m.host for m in route.mx_hosts
        ]

    @property
    def label(self) -> str:
        if self.kind == "sts" and self.policy is not None and self.policy.mode == "testing":
            return "sts-testing"
        return self.kind


#: Opens a session to ``target``: (target, tls mode, context or None for the
#: scheduler's checking one, a check of the TLS peer or None).
Opener = Callable[
    [
        Target,
        Literal["opportunistic", "required", "none"],
        ssl.SSLContext | None,
        Callable[[ssl.SSLObject], str | None] | None,
    ],
    Awaitable[object],
]


def result_type(text: str) -> str | None:
    """The RFC 8460 result type of a failed session, None if not a TLS failure."""
    low = text.lower()
    if "starttls" in low:
        return "starttls-not-supported"
    if "(dane)" in low:
        return "tlsa-invalid"
    if "hostname mismatch" in low or "doesn't match" in low:
        return "certificate-host-mismatch"
    if "expired" in low:
        return "certificate-expired"
    if "certificate verify failed" in low:
        return "certificate-not-trusted"
    if "ssl" in low or "tls" in low or "handshake" in low:
        return "validation-failure"
    return None


class TLSPolicies:
    """Per-domain DANE and MTA-STS policies, cached, and the counts of their sessions.

    ``verify``: the context checking MX and policy-host certificates (None:
    the system's CAs). ``cache``: the MTA-STS cache file (None: memory only).
    ``https_port`` is 443 but in unit tests that cannot bind it.
    """

    def __init__(
        self,
        resolver: MXResolver,
        *,
        mta_sts: bool = True,
        dane: bool = True,
        verify: ssl.SSLContext | None = None,
        cache: Path | None = None,
        timeout: float = 10.0,
        https_port: int = 443,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self.mta_sts = mta_sts
        self.dane = dane
        self.verify = verify or client_context()
        self.store = PolicyCache(cache)
        self.timeout = timeout
        self.https_port = https_port
        self.clock = clock
        self.wall = wall
        self.counts: dict[str, TLSCounts] = {}
        # Bounded like the MX cache: a long-running server meets many domains.
        self._known: _LRU[DomainTLS] = _LRU(cache_size)
        self._inflight: dict[str, asyncio.Future[DomainTLS]] = {}
        # DANE checks the peer itself (3.1.1: no CA, and for DANE-EE no
        # name), so OpenSSL is told to accept whatever chain comes.
        self._dane_context = client_context(verify=False)

    # -- lookups ----------------------------------------------------------

    def cached(self, route: Route) -> DomainTLS | None:
        """The domain's policy if looked up for this route's MX hosts and still
        fresh: the per-message path."""
        # The LRU's dict read directly: no reordering per message (an entry is
        # refreshed, and moved, when it is looked up again).
        entry = self._known.data.get(route.domain)
        if entry is None or entry[0] <= self.clock() or not entry[1].fits(route):
            return None
        return entry[1]

    async def lookup(self, route: Route) -> DomainTLS:
        """The domain's policy, looked up once however many messages wait for it."""
        domain = route.domain
        pending = self._inflight.get(domain)
        if pending is None or pending.done():
            pending = asyncio.ensure_future(self._lookup(route))
            self._inflight[domain] = pending
            pending.add_done_callback(
                lambda f: self._inflight.pop(domain) if self._inflight.get(domain) is f else None
            )
        found = await asyncio.shield(pending)
        # A lookup already under way for the domain's previous MX hosts does
        # not answer for these.
        return found if found.fits(route) else await self._lookup(route)

    async def _lookup(self, route: Route) -> DomainTLS:
        domain = route.domain
        ttl = MAX_REFRESH
        tlsa: dict[str, tuple[TLSA, ...]] = {}
        encrypt: set[str] = set()
        bare = not (self.dane and route.secure)  # some host has no TLSA records
        if not bare:
            found = await asyncio.gather(
                *(self._tlsa(mx.host, route.port) for mx in route.mx_hosts)
            )
            for mx, (records, unusable, rttl) in zip(route.mx_hosts, found, strict=True):
                ttl = min(ttl, rttl)
                if unusable:
                    encrypt.add(mx.host)
                elif records is not None:
                    tlsa[mx.host] = records
                else:
                    bare = True
        policy: Policy | None = None
        if bare and self.mta_sts:
            try:
                policy, error, rttl = await self._sts(domain)
            except Exception as exc:  # a fault of ours or a library's: no new policy
                policy = self.store.get(domain, self.wall())
                error, rttl = type(exc).__name__, MIN_REFRESH
            ttl = min(ttl, rttl)
            if error is not None:
                _failed(self._counts(domain, policy), "sts-policy-fetch-error")
        refresh = max(MIN_REFRESH, min(ttl, MAX_REFRESH))
        if policy is not None:  # never used past its max_age
            refresh = min(refresh, max(policy.expires() - self.wall(), 1.0))
        if policy is not None and policy.mode == "none":
            policy = None
        expires = self.clock() + refresh
        kind: Literal["dane", "sts", "none"] = (
            "dane" if tlsa or encrypt else "sts" if policy is not None else "none"
        )
        found_tls = DomainTLS(
            domain, kind, policy, tlsa, frozenset(encrypt), route.mx_hosts, route.secure
        )
        self._known.put(domain, found_tls, expires)
        return found_tls

    async def _tlsa(self, host: str, port: int) -> tuple[tuple[TLSA, ...] | None, bool, float]:
        """(usable DNSSEC-secure TLSA records of ``host``: None none, ``()`` the
        lookup failed; whether it has secure records but none usable; TTL)."""
        import dns.resolver

        try:
            name = dns.name.from_text(f"_{port}._tcp.{host}", origin=dns.name.root)
        except dns.name.NameTooLong:
            return None, False, MAX_REFRESH  # no such name can hold records
        try:
            rrset, ttl, secure = await self.resolver.query(name, dns.rdatatype.TLSA)
            if rrset is None or not secure:
                return None, False, ttl  # no records, or not DNSSEC-validated: ignored
            records = usable(
                [TLSA(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert)) for r in rrset]
            )
        except dns.resolver.NXDOMAIN:
            return None, False, MAX_REFRESH
        except Exception:
            # RFC 7672 2.2.1: a failed TLSA lookup of a secure MX host makes
            # the host unusable (it may have records we cannot see). Any
            # fault (a malformed answer too) is such a failure, never "none".
            return (), False, MIN_REFRESH
        return (records or None), not records, ttl

    async def _sts(self, domain: str) -> tuple[Policy | None, str | None, float]:
        """(policy in force or None, why a fetch failed or None, TXT TTL)."""
        import dns.resolver

        now = self.wall()
        cached = self.store.get(domain, now)
        try:
            name = dns.name.from_text(f"_mta-sts.{domain}", origin=dns.name.root)
        except dns.name.NameTooLong:
            return None, None, MAX_REFRESH  # no record can exist
        try:
            rrset, ttl, _ = await self.resolver.query(name, dns.rdatatype.TXT)
        except dns.resolver.NXDOMAIN:
            rrset, ttl = None, MAX_REFRESH
        except (dns.exception.DNSException, OSError):
            return cached, None, MIN_REFRESH
        id_ = sts_id([list(r.strings) for r in (rrset or ())])
        if id_ is None:
            # No record (or not exactly one, 3.1): a cached policy stays until it expires (5.1).
            return cached, None, ttl
        if cached is not None and cached.id == id_ and now - cached.fetched < _refetch(cached):
            return cached, None, ttl
        try:
            address = await self._address(f"mta-sts.{domain}")
            body = await fetch_policy(
                domain, address, self.verify, timeout=self.timeout, port=self.https_port
            )
            policy = parse_policy(body, id_, now)
        except PolicyError as exc:
            return cached, exc.message, MIN_REFRESH
        # The whole file is rewritten: off the event loop, which keeps sending.
        await asyncio.to_thread(self.store.put, domain, policy)
        return policy, None, ttl

    async def _address(self, host: str) -> str:
        try:
            name = dns.name.from_text(host, origin=dns.name.root)
        except dns.exception.DNSException:
            raise PolicyError(f"{host}: not a valid host name") from None
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                rrset, _, _ = await self.resolver.query(name, rdtype)
            except (dns.exception.DNSException, OSError) as exc:
                raise PolicyError(f"{host}: address lookup failed ({type(exc).__name__})") from None
            if rrset:
                return str(rrset[0].to_text())
        raise PolicyError(f"{host} has no address")

    # -- sessions ---------------------------------------------------------

    async def connect(self, tls: DomainTLS, route: Route, open_: Opener, usual: str) -> object:
        """A session to the first of ``route``'s hosts that meets ``tls``
        (``usual``: the site's TLS mode, where the policy leaves it so)."""
        last = "no MX host to connect to"
        mode: Literal["opportunistic", "required", "none"] = usual  # type: ignore[assignment]
        if tls.kind == "dane" and not tls.fits(route):
            # Never read a host missing from the lookup as "no TLSA": defer,
            # and the next message to the domain looks its route up again.
            raise TemporaryDeliveryError(
                f"{tls.domain}: its DANE policy was looked up for other MX hosts",
                enhanced_status="4.7.5",
            )
        for target in route.targets():
            try:
                if tls.kind == "dane":
                    session = await self._dane(tls, target, open_)
                    if session is not None:
                        return session
                policy = tls.policy
                if policy is None:  # a secure domain's host without TLSA (7672 2.2)
                    return await open_(target, mode, None, None)
                enforce = policy.mode == "enforce"
                if not policy.allows(target.host):
                    self._failed(tls, "validation-failure")
                    last = f"{target.host} is not an MX host its MTA-STS policy names"
                    if enforce:
                        continue
                    return await open_(target, mode, None, None)
                try:
                    opening = open_(target, "required", None, None)
                    return await self._policed(tls, opening)
                except TemporaryDeliveryError:
                    if enforce:
                        raise
                    return await open_(target, mode, None, None)  # testing: deliver anyway
            except PermanentDeliveryError:
                raise
            except TemporaryDeliveryError as exc:
                last = exc.message
        raise TemporaryDeliveryError(
            f"{tls.domain}: no MX host meets its {'DANE' if tls.kind == 'dane' else 'MTA-STS'}"
            f" policy ({last}); not sent in plain text or unverified",
            enhanced_status="4.7.5",
        )

    async def _dane(self, tls: DomainTLS, target: Target, open_: Opener) -> object | None:
        """A DANE session to ``target``; None when it has no TLSA records."""
        host = target.host
        if host in tls.encrypt:  # records, none usable: TLS, unauthenticated
            return await self._policed(tls, open_(target, "required", self._dane_context, None))
        records = tls.tlsa.get(host)
        if records is None:
            return None
        if not records:
            self._failed(tls, "tlsa-invalid")
            raise TemporaryDeliveryError(f"{host}: its TLSA lookup failed (DNSSEC)")
        check = functools.partial(dane_check, records=records, host=host)
        return await self._policed(tls, open_(target, "required", self._dane_context, check))

    async def _policed(self, tls: DomainTLS, opening: Awaitable[object]) -> object:
        """Await a policy session; count its success or its kind of failure."""
        try:
            session = await opening
        except TemporaryDeliveryError as exc:
            kind = result_type(exc.message)
            if kind is not None:
                self._failed(tls, kind)
            raise
        counts = self._counts(tls.domain, tls.policy, tls.label)
        counts.success += 1
        return session

    def _failed(self, tls: DomainTLS, kind: str) -> None:
        _failed(self._counts(tls.domain, tls.policy, tls.label), kind)

    def _counts(self, domain: str, policy: Policy | None, label: str | None = None) -> TLSCounts:
        counts = self.counts.get(domain)
        if counts is None:
            counts = self.counts[domain] = TLSCounts()
        if label is not None:
            counts.policy = label
        elif policy is not None and policy.mode != "none":
            counts.policy = "sts-testing" if policy.mode == "testing" else "sts"
        return counts


def _failed(counts: TLSCounts, kind: str) -> None:
    counts.failure += 1
    counts.failures[kind] = counts.failures.get(kind, 0) + 1
