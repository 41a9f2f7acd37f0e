"""Where mail for a domain goes (MX resolution) and which queue it shares (sites).

:class:`MXResolver` looks up MX records with dnspython's async resolver and
returns a :class:`Route`: the MX hosts by preference, each with its IPv4 and
IPv6 addresses, ready to connect to. Rules it follows:

- RFC 5321 5.1: MX hosts are tried by preference, equal preferences in random
  order (:meth:`Route.targets`); a domain without MX records but with A/AAAA
  records is its own mail host (implicit MX, preference 0).
- RFC 7505: a null MX (``0 .``) means the domain accepts no mail: a permanent
  failure (``556 5.1.10``); a ``.`` listed beside real MX hosts is ignored
  (a misconfiguration). NXDOMAIN is permanent too (``5.1.2``); so is a
  domain whose MX hosts all have no address (``5.4.4``). SERVFAIL, REFUSED and
  timeouts are temporary (``4.4.3``).
- Answers are cached for their TTL (clamped to ``[min_ttl, max_ttl]``),
  negative answers for the SOA's negative TTL (RFC 2308), temporary failures
  for ``temporary_ttl`` (RFC 2308 7.1 allows up to five minutes); the cache is
  an LRU of at most ``cache_size`` domains (and as many MX hosts). Concurrent
  lookups of one domain share one query.
- A smarthost (``"host:port"``) bypasses MX for every domain; an address
  literal domain (``user@[192.0.2.1]``) goes straight to that address.
- Unicode domains are IDNA-encoded; everything is keyed by the ASCII
  (``xn--``) form, lower case, without the trailing dot.
- Queries ask for the AD bit; ``Route.secure`` says whether the resolver set
  it on the MX answer (DANE needs a validated MX, RFC 7672 2.2.1), believed
  only when every nameserver is a loopback address (or ``trust_remote_ad``
  says the path to them is trusted: the bit is not protected on the wire), and
  :meth:`MXResolver.query` serves the TXT and TLSA lookups of the TLS policy.

Sites: domains whose MX host sets are equal share one queue, so gmail.com and
googlemail.com are one site. The key is derived from the sorted host set
(:func:`site_key`: ``mx:<common suffix>/<count>#<hash>``, or ``mx:<host>`` for
one host); ``site_names`` maps MX host patterns to named sites, KumoMTA
style (``{"*.google.com": "google"}``: every domain whose MX hosts all match
is site ``google``). :data:`WELL_KNOWN_SITES` holds such a mapping for the
large mailbox providers.

Errors are :class:`PermanentRoutingError` / :class:`TemporaryRoutingError`
(both :class:`mailsflux.errors.DeliveryError`), naming the domain in the
message and in ``domain``, with ``enhanced_status`` set.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import hashlib
import ipaddress
import random
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, Literal, NamedTuple, TypeVar

import msgspec

from mailsflux.errors import (
    ConfigError,
    PermanentRoutingError,
    RoutingError,
    TemporaryRoutingError,
)

# dnspython is imported where lookups and domain checks need it: a job
# through a smarthost makes none, and the import cost every process about
# 30 ms (the resolver half 15, and dns.name pulls in importlib.metadata to
# see whether the idna package is installed).
if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.exception
    import dns.message
    import dns.name
    import dns.nameserver
    import dns.rdatatype
    import dns.resolver
    import dns.rrset

__all__ = [
    "WELL_KNOWN_SITES",
    "MXHost",
    "MXResolver",
    "PermanentRoutingError",
    "Route",
    "RouteKind",
    "RoutingError",
    "Site",
    "Target",
    "TemporaryRoutingError",
    "normalize_domain",
    "parse_smarthost",
    "site_key",
]

#: MX host patterns of the large mailbox providers -> a site name, for
#: ``MXResolver(site_names=WELL_KNOWN_SITES)``. Gmail uses
#: ``*.gmail-smtp-in.l.google.com``, Google Workspace ``*.aspmx.l.google.com``
#: and ``smtp.google.com``; Outlook.com/Hotmail and Microsoft 365 use
#: ``*.protection.outlook.com``; Yahoo and AOL use ``*.yahoodns.net``.
WELL_KNOWN_SITES: Mapping[str, str] = {
    "*.google.com": "google",
    "*.googlemail.com": "google",
    "*.protection.outlook.com": "microsoft",
    "*.yahoodns.net": "yahoo",
}

RouteKind = Literal["mx", "implicit", "smarthost", "literal"]

_LABELS = re.compile(
    r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$"
)
# A smarthost name is resolved once through the system and kept this long.
_SMARTHOST_TTL = 300.0


class MXHost(NamedTuple):
    """One mail host of a route: its MX preference, name and addresses."""

    preference: int
    host: str
    addresses: tuple[str, ...]


class Target(NamedTuple):
    """One address to connect to, in failover order."""

    host: str
    address: str
    port: int
    preference: int


class Route(msgspec.Struct, frozen=True):
    """Where mail for ``domain`` goes: hosts sorted by preference, then name."""

    domain: str
    kind: RouteKind
    mx_hosts: tuple[MXHost, ...]
    port: int
    site_key: str
    #: Seconds this answer was valid for when it was looked up.
    ttl: float
    #: The configured site name (``site_names``) when one matched, else None.
    site_name: str | None = None
    #: The resolver set the AD bit on the MX answer (DNSSEC validated): the
    #: condition for DANE (RFC 7672 2.2.1).
    secure: bool = False

    def targets(self, rng: random.Random | None = None) -> list[Target]:
        """Every (host, address) to try, in order: by preference, equal
        preferences shuffled (RFC 5321 5.1), each host's addresses in turn."""
        shuffle = (rng or random).shuffle
        out: list[Target] = []
        hosts = list(self.mx_hosts)
        i = 0
        while i < len(hosts):
            j = i
            while j < len(hosts) and hosts[j].preference == hosts[i].preference:
                j += 1
            group = hosts[i:j]
            shuffle(group)
            for mx in group:
                out.extend(Target(mx.host, a, self.port, mx.preference) for a in mx.addresses)
            i = j
        return out

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(mx.host for mx in self.mx_hosts)


class Site(msgspec.Struct, frozen=True):
    """A delivery queue: the domains that share one set of MX hosts.

    ``mx_hosts`` are those of the domain the site was asked for (for a named
    site, the member domains' hosts may differ); ``domains`` are the member
    domains known so far (those resolved and still cached).
    """

    key: str
    mx_hosts: tuple[MXHost, ...]
    domains: tuple[str, ...]
    name: str | None = None


def normalize_domain(domain: str) -> str:
    """The ASCII (IDNA, ``xn--``) lower-case form of ``domain``, no trailing dot.

    An address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``) is returned
    in canonical form. Raises :class:`PermanentRoutingError` (``5.1.2``) for
    something that cannot be a domain.
    """
    text = domain.strip()
    if text.startswith("[") and text.endswith("]"):
        return f"[{_literal_address(text, domain)}]"
    text = text.rstrip(".")
    ascii_form = text.lower()
    # Letters, digits, "-" and "_" in labels of 1 to 63, at most 253 in all
    # (255 on the wire): what dnspython gives back unchanged but for case.
    # Only other names (IDNA, escapes, too long) need it, and its import.
    # The text itself must be ASCII: the Kelvin sign (U+212A) lowers to "k",
    # and IDNA refuses labels ("_K") that plain ASCII ones may be.
    # fullmatch: _LABELS's "$" alone also matches before a final line end.
    if not (
        text.isascii()
        and len(ascii_form) <= 253
        and _LABELS.fullmatch(ascii_form)
        and max(map(len, ascii_form.split("."))) <= 63
    ):
        ascii_form = _dns_form(text)
    if not _LABELS.match(ascii_form) or ("." not in ascii_form and ascii_form != "localhost"):
        raise PermanentRoutingError(
            f"{domain!r} is not a valid mail domain", domain=domain, enhanced_status="5.1.2"
        )
    return ascii_form


def _dns_form(text: str) -> str:
    """``text`` as dnspython writes it (IDNA applied, lower case), or "" when
    it is no domain name."""
    import dns.exception
    import dns.name

    idna = dns.name.IDNA_2008_Practical if dns.name.have_idna_2008 else dns.name.IDNA_2003
    try:
        if not text or "@" in text:
            raise ValueError(text)
        return (
            dns.name.from_text(text, origin=dns.name.root, idna_codec=idna)
            .to_text(omit_final_dot=True)
            .lower()
        )
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return ""


def _literal_address(text: str, domain: str) -> str:
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        raise PermanentRoutingError(
            f"{domain!r} is not a valid address literal", domain=domain, enhanced_status="5.1.2"
        ) from None


def parse_smarthost(value: str | tuple[str, int], default_port: int = 25) -> tuple[str, int]:
    """``"host"``, ``"host:port"``, ``"[v6]:port"`` or ``(host, port)`` -> ``(host, port)``."""
    return parse_host_port(value, default_port, what="smarthost")


def parse_host_port(
    value: str | tuple[str, int], default_port: int, *, what: str, bare_ipv6: bool = False
) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port`` -> ``(host, port)``; with ``bare_ipv6``
    also an unbracketed IPv6 address. ``what`` names the setting in errors."""
    if isinstance(value, tuple):
        host, port = value
    else:
        text = value.strip()
        m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", text)
        if m is not None:
            host = m.group(1) or m.group(3)
            port = int(m.group(2) or m.group(4) or default_port)
        elif bare_ipv6 and _is_ipv6(text):
            host, port = text, default_port
        else:
            raise ConfigError(f"{what} {value!r} is not host[:port]", field=what)
    host = host.strip().rstrip(".").lower()
    if not host or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {value!r} is not host[:port]", field=what)
    return host, int(port)


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def site_key(hosts: Iterable[str]) -> str:
    """A stable, short, readable key for a set of MX host names.

    One host: ``mx:<host>``. Several: ``mx:<suffix>/<count>#<hash>``, where
    suffix is the longest common label suffix of the hosts (when it has at
    least two labels, else the first host) and hash the first 8 hex digits of
    SHA-256 over the sorted, comma-joined set.
    """
    unique = sorted({h.lower().rstrip(".") for h in hosts})
    if not unique:
        return "mx:"
    if len(unique) == 1:
        return f"mx:{unique[0]}"
    split = [h.split(".") for h in unique]
    common: list[str] = []
    for labels in zip(*(reversed(s) for s in split), strict=False):
        if len(set(labels)) != 1:
            break
        common.append(labels[0])
    readable = ".".join(reversed(common)) if len(common) >= 2 else unique[0]
    digest = hashlib.sha256(",".join(unique).encode()).hexdigest()[:8]
    return f"mx:{readable}/{len(unique)}#{digest}"


_HostAnswer = tuple[tuple[str, ...], float, Literal["ok", "temporary", "permanent"], str]


V = TypeVar("V")


class _LRU(Generic[V]):
    """Bounded mapping of key -> (expires, value), least recently used out first."""

    def __init__(self, size: int, on_evict: Callable[[str], None] | None = None) -> None:
        self.size = max(1, size)
        self.data: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self.on_evict = on_evict

    def get(self, key: str, now: float) -> V | None:
        entry = self.data.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            return None
        self.data.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: V, expires: float) -> None:
        self.data[key] = (expires, value)
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            old, _ = self.data.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old)

    def clear(self) -> None:
        for key in list(self.data):
            del self.data[key]
            if self.on_evict is not None:
                self.on_evict(key)


class MXResolver:
    """MX lookups with failover order, caching and sites.

    ``nameservers``: ``(ip, port)`` pairs or IPs (port 53); ``None`` uses the
    system configuration. ``smarthost``: ``"host[:port]"`` or ``(host, port)``
    that every domain is routed to instead. ``trust_remote_ad``: believe the
    AD bit of nameservers off this host too. ``port``: the SMTP port of MX
    hosts (25; tests point it at a local server). ``clock`` is the monotonic
    clock the cache uses, injectable for tests.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[tuple[str, int] | str] | None = None,
        smarthost: str | tuple[str, int] | None = None,
        port: int = 25,
        ipv6: bool = True,
        prefer_ipv6: bool = False,
        timeout: float = 5.0,
        lifetime: float = 15.0,
        cache_size: int = 10_000,
        min_ttl: float = 5.0,
        max_ttl: float = 86_400.0,
        temporary_ttl: float = 30.0,
        site_names: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        trust_remote_ad: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.trust_remote_ad = trust_remote_ad
        #: Whether an answer's AD bit is believed (set with the resolver).
        self._ad_trusted = False
        self.ipv6 = ipv6
        self.prefer_ipv6 = prefer_ipv6
        self.timeout = timeout
        self.lifetime = lifetime
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.temporary_ttl = temporary_ttl
        self.clock = clock
        self.smarthost = parse_smarthost(smarthost, port) if smarthost is not None else None
        pairs = site_names.items() if isinstance(site_names, Mapping) else site_names
        self.site_names: tuple[tuple[str, str], ...] = tuple(
            (pattern.lower().rstrip("."), name) for pattern, name in pairs
        )
        self._nameservers = nameservers
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._routes: _LRU[Route | RoutingError] = _LRU(cache_size, self._forget_member)
        self._hosts: _LRU[_HostAnswer] = _LRU(cache_size)
        self._inflight: dict[str, asyncio.Future[Route | RoutingError]] = {}
        self._members: dict[str, dict[str, None]] = {}
        self._member_of: dict[str, tuple[str, Route]] = {}
        #: Lookups answered from the cache / that went to DNS (or the smarthost).
        self.hits = 0
        self.misses = 0

    # -- public -----------------------------------------------------------

    async def resolve(self, domain: str) -> Route:
        """The route for ``domain``; raises :class:`RoutingError` when there is none."""
        now = self.clock()
        # Fast path: a domain already in normal form (the usual case) is a key.
        cached = self._routes.get(domain, now)
        if cached is not None:
            self.hits += 1
            return _unwrap(cached)
        key = normalize_domain(domain)
        cached = self._routes.get(key, now)
        if cached is not None:
            self.hits += 1
            return _unwrap(cached)
        pending = self._inflight.get(key)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            self.misses += 1
            pending = asyncio.ensure_future(self._lookup(key))
            self._inflight[key] = pending
            pending.add_done_callback(functools.partial(self._done, key))
        return _unwrap(await asyncio.shield(pending))

    def cached(self, domain: str) -> Route | None:
        """The route :meth:`resolve` would answer at once from its cache for
        ``domain`` already in normal form, or None (ask :meth:`resolve`):
        its fast path without a coroutine, for the per-message caller."""
        route = self._routes.get(domain, self.clock())
        if route is None or isinstance(route, RoutingError):
            return None
        self.hits += 1
        return route

    async def site_for(self, domain: str) -> Site:
        """The site (queue) of ``domain``; raises :class:`RoutingError` like :meth:`resolve`."""
        route = await self.resolve(domain)
        return self._site(route.site_key, route)

    async def targets(self, domain: str, rng: random.Random | None = None) -> list[Target]:
        """Shortcut for ``(await resolve(domain)).targets(rng)``."""
        return (await self.resolve(domain)).targets(rng)

    def sites(self) -> dict[str, Site]:
        """Every site with member domains still cached, by key."""
        out: dict[str, Site] = {}
        for key, members in self._members.items():
            first = next(iter(members), None)
            if first is not None:
                out[key] = self._site(key, self._member_of[first][1])
        return out

    def clear(self) -> None:
        """Drop every cached answer (and with it every site membership)."""
        self._routes.clear()
        self._hosts.clear()

    def name_for(self, hosts: Iterable[str]) -> str | None:
        """The configured site name whose pattern matches every host, if any."""
        hosts = [h.lower() for h in hosts]
        if not hosts:
            return None
        for pattern, name in self.site_names:
            if all(fnmatch.fnmatchcase(h, pattern) for h in hosts):
                return name
        return None

    # -- lookups ----------------------------------------------------------

    def _done(self, key: str, future: asyncio.Future[Route | RoutingError]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        now = self.clock()
        if isinstance(result, RoutingError):
            ttl = result.ttl if result.ttl is not None else self.temporary_ttl
            self._routes.put(key, result, now + ttl)
            return
        self._routes.put(key, result, now + result.ttl)
        self._join(key, result)

    async def _lookup(self, domain: str) -> Route | RoutingError:
        try:
            if self.smarthost is not None:
                return await self._smarthost_route(domain, *self.smarthost)
            if domain.startswith("["):
                address = domain[1:-1]
                mx = MXHost(0, address, (address,))
                return self._route(domain, "literal", (mx,), self.max_ttl, f"literal:{address}")
            return await self._mx_route(domain)
        except RoutingError as exc:
            return exc

    async def _mx_route(self, domain: str) -> Route:
        import dns.exception
        import dns.name
        import dns.rdatatype
        import dns.resolver

        name = dns.name.from_text(domain, origin=dns.name.root)
        try:
            rrset, ttl, secure = await self.query(name, dns.rdatatype.MX)
        except dns.resolver.NXDOMAIN as exc:
            raise _permanent(
                f"domain {domain} does not exist (NXDOMAIN)", domain, "5.1.2", _negative_ttl(exc)
            ) from None
        except (dns.exception.DNSException, OSError) as exc:
            raise _temporary(
                f"MX lookup for {domain} failed: {_describe(exc)}", domain, self.temporary_ttl
            ) from None
        if rrset is None or len(rrset) == 0:
            route = await self._implicit_route(domain, name, ttl)
            return msgspec.structs.replace(route, secure=secure)
        records = sorted(
            {(int(r.preference), r.exchange) for r in rrset},
            key=lambda pe: (pe[0], pe[1].to_text()),
        )
        real = [(pref, ex) for pref, ex in records if ex != dns.name.root]
        if not real:
            raise _permanent(
                f"domain {domain} accepts no mail (null MX, RFC 7505)",
                domain,
                "5.1.10",
                _clamp(ttl, self.min_ttl, self.max_ttl),
                code=556,
            )
        best: dict[str, int] = {}
        for pref, exchange in real:  # a host listed twice keeps its best preference
            host = exchange.to_text(omit_final_dot=True).lower()
            best.setdefault(host, pref)
        answers = await asyncio.gather(*(self._addresses(h) for h in best))
        hosts: list[MXHost] = []
        temporary: list[str] = []
        for (host, pref), (addresses, host_ttl, status, why) in zip(
            best.items(), answers, strict=True
        ):
            if addresses:
                hosts.append(MXHost(pref, host, addresses))
                ttl = min(ttl, host_ttl)
            if status == "temporary":
                temporary.append(f"{host}: {why}")
                ttl = min(ttl, self.temporary_ttl)
        if not hosts:
            if temporary:
                raise _temporary(
                    f"no MX host of {domain} could be resolved ({'; '.join(temporary)})",
                    domain,
                    self.temporary_ttl,
                )
            raise _permanent(
                f"no MX host of {domain} has an address ({', '.join(best)})",
                domain,
                "5.4.4",
                _clamp(ttl, self.min_ttl, self.max_ttl),
            )
        hosts.sort(key=lambda mx: (mx.preference, mx.host))
        return msgspec.structs.replace(self._route(domain, "mx", tuple(hosts), ttl), secure=secure)

    async def _implicit_route(self, domain: str, name: dns.name.Name, mx_ttl: float) -> Route:
        addresses, ttl, status, why = await self._addresses(domain, name)
        if not addresses:
            if status == "temporary":
                raise _temporary(
                    f"{domain} has no MX record and its address lookup failed: {why}",
                    domain,
                    self.temporary_ttl,
                )
            raise _permanent(
                f"domain {domain} has no MX and no A/AAAA record",
                domain,
                "5.1.2",
                _clamp(min(mx_ttl, ttl), self.min_ttl, self.max_ttl),
            )
        hosts = (MXHost(0, domain, addresses),)
        return self._route(domain, "implicit", hosts, min(mx_ttl, ttl))

    async def _smarthost_route(self, domain: str, host: str, port: int) -> Route:
        now = self.clock()
        cache_key = f"smarthost:{host}:{port}"
        cached = self._hosts.get(cache_key, now)
        if cached is None:
            cached = await self._system_addresses(host, port)
            self._hosts.put(cache_key, cached, now + cached[1])
        addresses, _, _, why = cached
        if not addresses:
            raise _temporary(
                f"smarthost {host}:{port} for {domain} has no address: {why}",
                domain,
                self.temporary_ttl,
            )
        return Route(
            domain=domain,
            kind="smarthost",
            mx_hosts=(MXHost(0, host, addresses),),
            port=port,
            site_key=cache_key,
            ttl=self.max_ttl,
        )

    async def _system_addresses(self, host: str, port: int) -> _HostAnswer:
        try:
            return ((str(ipaddress.ip_address(host)),), self.max_ttl, "ok", "")
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return ((), self.temporary_ttl, "temporary", str(exc))
        found = {str(info[4][0]): info[0] for info in infos}
        return (self._order(found), _SMARTHOST_TTL, "ok", "")

    def _order(self, found: Mapping[str, int]) -> tuple[str, ...]:
        # Sorted within each family, so a route is the same on every lookup.
        v4 = sorted((a for a, fam in found.items() if fam == socket.AF_INET), key=_ip_key)
        v6 = sorted(
            (a for a, fam in found.items() if fam == socket.AF_INET6 and self.ipv6), key=_ip_key
        )
        return tuple(v6 + v4 if self.prefer_ipv6 else v4 + v6)

    async def _addresses(self, host: str, name: dns.name.Name | None = None) -> _HostAnswer:
        """A and AAAA of ``host``: (addresses, ttl, status, why), cached."""
        import dns.exception
        import dns.name
        import dns.rdatatype
        import dns.resolver

        now = self.clock()
        cached = self._hosts.get(host, now)
        if cached is not None:
            return cached
        if name is None:
            name = dns.name.from_text(host, origin=dns.name.root)
        kinds = [dns.rdatatype.A] + ([dns.rdatatype.AAAA] if self.ipv6 else [])
        results = await asyncio.gather(
            *(self._query(name, k) for k in kinds), return_exceptions=True
        )
        found: dict[str, int] = {}
        # Positive answers set the TTL; a negative one (no AAAA, say) only
        # when the host has no address at all.
        ttl, negative_ttl = self.max_ttl, self.max_ttl
        status: Literal["ok", "temporary", "permanent"] = "ok"
        why = ""
        for kind, result in zip(kinds, results, strict=True):
            family = socket.AF_INET if kind == dns.rdatatype.A else socket.AF_INET6
            if isinstance(result, dns.resolver.NXDOMAIN):
                negative_ttl = min(negative_ttl, _negative_ttl(result))
                status, why = "permanent", "NXDOMAIN"
            elif isinstance(result, BaseException):
                if not isinstance(result, dns.exception.DNSException | OSError):
                    raise result
                negative_ttl = min(negative_ttl, self.temporary_ttl)
                if status != "permanent":
                    status, why = "temporary", _describe(result)
            else:
                rrset, rttl = result
                if rrset:
                    ttl = min(ttl, rttl)
                    for rdata in rrset:
                        found[rdata.to_text()] = family
                else:
                    negative_ttl = min(negative_ttl, rttl)
        if found:
            status = "ok"
        else:
            ttl = negative_ttl
            if status == "ok":
                status, why = "permanent", "no A/AAAA record"
        ttl = _clamp(ttl, self.min_ttl, self.max_ttl)
        answer: _HostAnswer = (self._order(found), ttl, status, why)
        self._hosts.put(host, answer, now + (self.temporary_ttl if status == "temporary" else ttl))
        return answer

    async def _query(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> tuple[dns.rrset.RRset | None, float]:
        rrset, ttl, _ = await self.query(name, rdtype)
        return rrset, ttl

    async def query(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> tuple[dns.rrset.RRset | None, float, bool]:
        """One lookup through this resolver's servers: (records or None on
        NODATA, TTL, whether the resolver set the AD bit). Raises dnspython's
        errors (NXDOMAIN, timeouts); TXT and TLSA lookups of the TLS policy use it."""
        import dns.flags

        answer = await self._dns().resolve(
            name, rdtype, raise_on_no_answer=False, search=False, lifetime=self.lifetime
        )
        secure = self._ad_trusted and bool(answer.response.flags & dns.flags.AD)
        return answer.rrset, float(answer.chaining_result.minimum_ttl), secure

    def _dns(self) -> dns.asyncresolver.Resolver:
        import dns.asyncresolver
        import dns.flags
        import dns.nameserver

        if self._resolver is None:
            if self._nameservers is None:
                resolver = dns.asyncresolver.Resolver(configure=True)
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                servers: list[str | dns.nameserver.Nameserver] = []
                for ns in self._nameservers:
                    ip, port = (ns, 53) if isinstance(ns, str) else ns
                    servers.append(dns.nameserver.Do53Nameserver(ip, port))
                resolver.nameservers = servers
            resolver.timeout = self.timeout
            resolver.lifetime = self.lifetime
            resolver.cache = None
            resolver.use_edns(0, 0, 1232)
            # AD in the query asks a validating resolver to say whether the
            # answer is DNSSEC-secure (RFC 6840 5.7): DANE needs to know.
            resolver.flags = dns.flags.RD | dns.flags.AD
            # The AD bit travels unprotected: believed only from resolvers on
            # this host (the path cannot be tampered with) unless the
            # operator says the path to a remote one is trusted.
            self._ad_trusted = self.trust_remote_ad or all(
                _loopback(getattr(ns, "address", ns)) for ns in resolver.nameservers
            )
            self._resolver = resolver
        return self._resolver

    # -- routes and sites -------------------------------------------------

    def _route(
        self,
        domain: str,
        kind: RouteKind,
        hosts: tuple[MXHost, ...],
        ttl: float,
        key: str | None = None,
    ) -> Route:
        name = None
        if key is None:
            name = self.name_for(mx.host for mx in hosts)
            key = name or site_key(mx.host for mx in hosts)
        return Route(
            domain=domain,
            kind=kind,
            mx_hosts=hosts,
            port=self.port,
            site_key=key,
            ttl=_clamp(ttl, self.min_ttl, self.max_ttl),
            site_name=name,
        )

    def _join(self, domain: str, route: Route) -> None:
        self._forget_member(domain)
        self._members.setdefault(route.site_key, {})[domain] = None
        self._member_of[domain] = (route.site_key, route)

    def _forget_member(self, domain: str) -> None:
        old = self._member_of.pop(domain, None)
        if old is not None:
            members = self._members.get(old[0])
            if members is not None:
                members.pop(domain, None)
                if not members:
                    del self._members[old[0]]

    def _site(self, key: str, route: Route) -> Site:
        members = self._members.get(key, {})
        domains = tuple(members) if route.domain in members else (*members, route.domain)
        return Site(key=key, mx_hosts=route.mx_hosts, domains=domains, name=route.site_name)


def _unwrap(result: Route | RoutingError) -> Route:
    if isinstance(result, RoutingError):
        raise result.with_traceback(None)
    return result


def _permanent(
    message: str, domain: str, enhanced: str, ttl: float, code: int | None = None
) -> PermanentRoutingError:
    return PermanentRoutingError(
        message, domain=domain, enhanced_status=enhanced, code=code, ttl=ttl
    )


def _temporary(message: str, domain: str, ttl: float) -> TemporaryRoutingError:
    return TemporaryRoutingError(message, domain=domain, enhanced_status="4.4.3", ttl=ttl)


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    import dns.message

    try:
        responses: dict[dns.name.Name, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]
        for response in responses.values():
            if isinstance(response, dns.message.QueryMessage):
                return float(response.resolve_chaining().minimum_ttl)
    except Exception:  # noqa: S110 - a malformed negative answer just gets the default
        pass
    return 300.0


def _describe(exc: BaseException) -> str:
    import dns.exception
    import dns.resolver

    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no nameserver answered ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _ip_key(address: str) -> tuple[int, str]:
    try:
        return (int(ipaddress.ip_address(address)), address)
    except ValueError:
        return (0, address)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _loopback(address: object) -> bool:
    try:
        return ipaddress.ip_address(str(address)).is_loopback
    except ValueError:
        return False
