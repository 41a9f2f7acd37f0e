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
  the host unusable. A secure domain's host without TLSA records gets the
  site's usual TLS. DANE takes precedence over MTA-STS (RFC 8461 2).
- MTA-STS (RFC 8461, :mod:`mailsflux.delivery.mtasts`): ``enforce`` uses
  only MX hosts the policy names, each with STARTTLS and a certificate
  valid for the host name (the system's CAs and ``[delivery] tls_ca``);
  ``testing`` tries that first, counts a failure and delivers as usual.

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
from mailsflux.delivery.mtasts import Policy, PolicyCache, fetch_policy, parse_policy, parse_txt
from mailsflux.delivery.mx import _LRU, MXResolver, Route, Target
from mailsflux.errors import PermanentDeliveryError, PolicyError, TemporaryDeliveryError
from mailsflux.types import TLSCounts

__all__ = ["DomainTLS", "Opener", "TLSPolicies", "result_type"]

#: How long a looked-up policy is kept in memory before DNS is asked again
#: (the TXT/TLSA TTL, clamped to this range).
MIN_REFRESH, MAX_REFRESH = 300.0, 3600.0


class DomainTLS(NamedTuple):
    """What a domain's sessions must meet."""

    domain: str
    kind: Literal["dane", "sts", "none"]
    #: MTA-STS's policy (``kind == "sts"``): mode and MX patterns.
    policy: Policy | None
    #: DANE: usable TLSA records by MX host; ``()`` when the lookup failed.
    tlsa: dict[str, tuple[TLSA, ...]]

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

    def cached(self, domain: str) -> DomainTLS | None:
        """The domain's policy if looked up and still fresh: the per-message path."""
        # The LRU's dict read directly: no reordering per message (an entry is
        # refreshed, and moved, when it is looked up again).
        entry = self._known.data.get(domain)
        return entry[1] if entry is not None and entry[0] > self.clock() else None

    async def lookup(self, route: Route) -> DomainTLS:
        """The domain's policy, looked up once however many messages wait for it."""
        domain = route.domain
        pending = self._inflight.get(domain)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(route))
            self._inflight[domain] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(domain, None))
        return await asyncio.shield(pending)

    async def _lookup(self, route: Route) -> DomainTLS:
        domain = route.domain
        ttl = MAX_REFRESH
        tlsa: dict[str, tuple[TLSA, ...]] = {}
        if self.dane and route.secure:
            found = await asyncio.gather(
                *(self._tlsa(mx.host, route.port) for mx in route.mx_hosts)
            )
            for mx, (records, rttl) in zip(route.mx_hosts, found, strict=True):
                ttl = min(ttl, rttl)
                if records is not None:
                    tlsa[mx.host] = records
        policy: Policy | None = None
        if not tlsa and self.mta_sts:
            policy, error, rttl = await self._sts(domain)
            ttl = min(ttl, rttl)
            if error is not None:
                _failed(self._counts(domain, policy), "sts-policy-fetch-error")
        refresh = max(MIN_REFRESH, min(ttl, MAX_REFRESH))
        if policy is not None:  # never used past its max_age
            refresh = min(refresh, max(policy.expires() - self.wall(), 1.0))
        expires = self.clock() + refresh
        if tlsa:
            found_tls = DomainTLS(domain, "dane", None, tlsa)
        elif policy is not None and policy.mode != "none":
            found_tls = DomainTLS(domain, "sts", policy, {})
        else:
            found_tls = DomainTLS(domain, "none", None, {})
        self._known.put(domain, found_tls, expires)
        return found_tls

    async def _tlsa(self, host: str, port: int) -> tuple[tuple[TLSA, ...] | None, float]:
        """Usable, DNSSEC-secure TLSA records of ``host`` (None: none; ``()``: lookup failed)."""
        import dns.resolver

        name = dns.name.from_text(f"_{port}._tcp.{host}", origin=dns.name.root)
        try:
            rrset, ttl, secure = await self.resolver.query(name, dns.rdatatype.TLSA)
        except dns.resolver.NXDOMAIN:
            return None, MAX_REFRESH
        except (dns.exception.DNSException, OSError):
            # RFC 7672 2.2.1: a failed TLSA lookup of a secure MX host makes
            # the host unusable (it may have records we cannot see).
            return (), MIN_REFRESH
        if rrset is None or not secure:
            return None, ttl  # no records, or not DNSSEC-validated: ignored
        records = usable(
            [TLSA(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert)) for r in rrset]
        )
        return (records or None), ttl

    async def _sts(self, domain: str) -> tuple[Policy | None, str | None, float]:
        """(policy in force or None, why a fetch failed or None, TXT TTL)."""
        import dns.resolver

        now = self.wall()
        cached = self.store.get(domain, now)
        name = dns.name.from_text(f"_mta-sts.{domain}", origin=dns.name.root)
        try:
            rrset, ttl, _ = await self.resolver.query(name, dns.rdatatype.TXT)
        except dns.resolver.NXDOMAIN:
            rrset, ttl = None, MAX_REFRESH
        except (dns.exception.DNSException, OSError):
            return cached, None, MIN_REFRESH
        ids = [i for r in (rrset or ()) if (i := parse_txt(list(r.strings))) is not None]
        if len(ids) != 1:
            # No record (or several, 3.1): a cached policy stays until it expires (5.1).
            return cached, None, ttl
        if cached is not None and cached.id == ids[0]:
            return cached, None, ttl
        try:
            address = await self._address(f"mta-sts.{domain}")
            body = await fetch_policy(
                domain, address, self.verify, timeout=self.timeout, port=self.https_port
            )
            policy = parse_policy(body, ids[0], now)
        except PolicyError as exc:
            return cached, exc.message, MIN_REFRESH
        self.store.put(domain, policy)
        return policy, None, ttl

    async def _address(self, host: str) -> str:
        name = dns.name.from_text(host, origin=dns.name.root)
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
        for target in route.targets():
            try:
                if tls.kind == "dane":
                    records = tls.tlsa.get(target.host)
                    if records is None:  # a secure domain's host without TLSA (7672 2.2)
                        return await open_(target, mode, None, None)
                    if not records:
                        self._failed(tls, "tlsa-invalid")
                        last = f"{target.host}: its TLSA lookup failed (DNSSEC)"
                        continue
                    check = functools.partial(dane_check, records=records, host=target.host)
                    opening = open_(target, "required", self._dane_context, check)
                    return await self._policed(tls, opening)
                assert tls.policy is not None
                enforce = tls.policy.mode == "enforce"
                if not tls.policy.allows(target.host):
                    self._failed(tls, "validation-failure")
                    last = f"{target.host} is not an MX host its MTA-STS policy names"
                    if enforce:
                        continue
                    return await open_(target, mode, None, None)
                try:
                    return await self._policed(tls, open_(target, "required", None, None))
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
