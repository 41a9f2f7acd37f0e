"""MX resolution against a real DNS server on loopback: order, failover, failures, cache."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiosmtplib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.delivery.mx import (
    MXResolver,
    PermanentRoutingError,
    Route,
    TemporaryRoutingError,
    normalize_domain,
    parse_smarthost,
)
from mailsflux.errors import ConfigError, DeliveryError
from tests._dns import DROP, REFUSED, SERVFAIL, TRUNCATE, DNSServer
from tests._mail import RecordingHandler, SMTPServer

T = TypeVar("T")

ZONE: dict[str, Any] = {
    "example.com": {
        "MX": ["10 mx-a.example.com.", "10 mx-b.example.com.", "20 backup.example.net."]
    },
    "mx-a.example.com": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
    "mx-b.example.com": {"A": ["192.0.2.2", "192.0.2.3"]},
    "backup.example.net": {"AAAA": ["2001:db8::99"]},
    "implicit.example": {"A": ["192.0.2.50"], "AAAA": ["2001:db8::50"]},
    "bare.example": {"TXT": ['"v=spf1 -all"']},
    "null.example": {"MX": ["0 ."]},
    "nxhosts.example": {"MX": ["10 gone.example.", "20 alsogone.example."]},
    "partial.example": {"MX": ["5 gone.example.", "10 mx-b.example.com."]},
    "servfail.example": SERVFAIL,
    "refused.example": REFUSED,
    "badhost.example": {"MX": ["10 broken-host.example."]},
    "broken-host.example": SERVFAIL,
    "slow.example": {"MX": DROP},
    "alias.example": {"MX": ["10 mail.alias.example."]},
    "mail.alias.example": {"CNAME": ["mx-b.example.com."]},
    "cname-domain.example": {"CNAME": ["example.com."]},
    "big.example": {TRUNCATE: True, "MX": ["10 mx-b.example.com."]},
    "xn--bcher-kva.example": {"MX": ["10 mx-a.example.com."]},
    "short.example": {"TTL": 30, "MX": ["10 short-mx.example."]},
    "short-mx.example": {"TTL": 30, "A": ["192.0.2.30"]},
    "dup.example": {"MX": ["30 mx-b.example.com.", "10 mx-b.example.com."]},
    "local.example": {"MX": ["10 mx.local.example."]},
    "mx.local.example": {"A": ["127.0.0.1"]},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer(ZONE, negative_ttl=60) as server:
        yield server


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make(server: DNSServer, **kw: Any) -> MXResolver:
    # Long enough for a loaded machine: only the timeout test waits it out.
    kw.setdefault("timeout", 2.0)
    kw.setdefault("lifetime", 4.0)
    return MXResolver(nameservers=[server.address], **kw)


def resolve(resolver: MXResolver, domain: str) -> Route:
    return run(resolver.resolve(domain))


def failure(resolver: MXResolver, domain: str) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        resolve(resolver, domain)
    return info.value


# -- order and failover -----------------------------------------------------


def test_hosts_sorted_by_preference_with_addresses(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "example.com")
    assert route.kind == "mx"
    assert route.domain == "example.com"
    assert route.mx_hosts == (
        (10, "mx-a.example.com", ("192.0.2.1", "2001:db8::1")),
        (10, "mx-b.example.com", ("192.0.2.2", "192.0.2.3")),
        (20, "backup.example.net", ("2001:db8::99",)),
    )
    assert route.port == 25


def test_failover_shuffles_equal_preferences_only(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "example.com")
    firsts = set()
    for seed in range(40):
        targets = route.targets(random.Random(seed))
        assert [t.preference for t in targets] == [10, 10, 10, 10, 20]
        # Each host's addresses stay together and in order (IPv4 first).
        hosts = [t.host for t in targets]
        assert hosts[-1] == "backup.example.net"
        by_host = {h: [t.address for t in targets if t.host == h] for h in set(hosts)}
        assert by_host["mx-a.example.com"] == ["192.0.2.1", "2001:db8::1"]
        assert by_host["mx-b.example.com"] == ["192.0.2.2", "192.0.2.3"]
        firsts.add(hosts[0])
    assert firsts == {"mx-a.example.com", "mx-b.example.com"}


def test_prefer_ipv6_and_ipv4_only(dns_server: DNSServer) -> None:
    v6 = resolve(make(dns_server, prefer_ipv6=True), "example.com")
    assert v6.mx_hosts[0].addresses == ("2001:db8::1", "192.0.2.1")
    v4 = resolve(make(dns_server, ipv6=False), "example.com")
    assert v4.mx_hosts[0].addresses == ("192.0.2.1",)
    # The IPv6-only backup has nothing left over IPv4: it is skipped.
    assert [mx.host for mx in v4.mx_hosts] == ["mx-a.example.com", "mx-b.example.com"]
    assert dns_server.count("mx-b.example.com", "AAAA") == 1  # only the first resolver asked


def test_host_listed_twice_keeps_best_preference(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "dup.example")
    assert route.mx_hosts == ((10, "mx-b.example.com", ("192.0.2.2", "192.0.2.3")),)


def test_mx_host_behind_cname_and_domain_behind_cname(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    route = resolve(resolver, "alias.example")
    assert route.mx_hosts == ((10, "mail.alias.example", ("192.0.2.2", "192.0.2.3")),)
    via = resolve(resolver, "cname-domain.example")
    assert via.hosts == ("mx-a.example.com", "mx-b.example.com", "backup.example.net")


def test_truncated_answer_retried_over_tcp(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "big.example")
    assert route.hosts == ("mx-b.example.com",)
    assert dns_server.transports["tcp"] >= 1


def test_unresolvable_mx_host_is_skipped(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "partial.example")
    assert route.hosts == ("mx-b.example.com",)


# -- implicit MX, null MX, failures ----------------------------------------


def test_implicit_mx_from_address_records(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server), "implicit.example")
    assert route.kind == "implicit"
    assert route.mx_hosts == ((0, "implicit.example", ("192.0.2.50", "2001:db8::50")),)


def test_no_mx_and_no_address_is_permanent(dns_server: DNSServer) -> None:
    exc = failure(make(dns_server), "bare.example")
    assert isinstance(exc, PermanentRoutingError)
    assert exc.permanent and exc.domain == "bare.example"
    assert exc.enhanced_status == "5.1.2"
    assert "bare.example" in str(exc)


def test_null_mx_is_permanent(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    exc = failure(resolver, "null.example")
    assert isinstance(exc, PermanentRoutingError)
    assert (exc.code, exc.enhanced_status, exc.domain) == (556, "5.1.10", "null.example")
    assert "null MX" in str(exc) and "null.example" in str(exc)
    # No address lookups for a null MX (no implicit MX fallback).
    assert dns_server.count("null.example", "A") == 0


def test_nxdomain_is_permanent(dns_server: DNSServer) -> None:
    exc = failure(make(dns_server), "no-such-domain.example")
    assert isinstance(exc, PermanentRoutingError)
    assert exc.permanent and exc.enhanced_status == "5.1.2"
    assert "no-such-domain.example" in str(exc) and "NXDOMAIN" in str(exc)


def test_all_mx_hosts_nxdomain_is_permanent(dns_server: DNSServer) -> None:
    exc = failure(make(dns_server), "nxhosts.example")
    assert isinstance(exc, PermanentRoutingError)
    assert exc.enhanced_status == "5.4.4"
    assert "nxhosts.example" in str(exc) and "gone.example" in str(exc)


@pytest.mark.parametrize("domain", ["servfail.example", "refused.example", "badhost.example"])
def test_servfail_and_refused_are_temporary(dns_server: DNSServer, domain: str) -> None:
    exc = failure(make(dns_server), domain)
    assert isinstance(exc, TemporaryRoutingError)
    assert not exc.permanent and exc.temporary
    assert exc.domain == domain and domain in str(exc)
    assert exc.enhanced_status == "4.4.3"


def test_timeout_is_temporary(dns_server: DNSServer) -> None:
    exc = failure(make(dns_server, timeout=0.2, lifetime=0.4), "slow.example")
    assert isinstance(exc, TemporaryRoutingError)
    assert "slow.example" in str(exc) and "timed out" in str(exc)


@pytest.mark.parametrize("bad", ["", "   ", ".", "no dots here", "a..b", "-x.example", "a@b.c"])
def test_invalid_domains_are_permanent(dns_server: DNSServer, bad: str) -> None:
    exc = failure(make(dns_server), bad)
    assert isinstance(exc, PermanentRoutingError) and exc.enhanced_status == "5.1.2"
    assert dns_server.count() == 0


# -- IDNA, address literals, smarthost -------------------------------------


def test_idna_unicode_and_ascii_share_one_lookup(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    assert normalize_domain("Bücher.Example.") == "xn--bcher-kva.example"
    uni = resolve(resolver, "bücher.example")
    ascii_ = resolve(resolver, "XN--BCHER-KVA.example")
    assert uni == ascii_ and uni.domain == "xn--bcher-kva.example"
    assert dns_server.count("xn--bcher-kva.example", "MX") == 1


def test_address_literal_needs_no_dns(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    route = resolve(resolver, "[192.0.2.9]")
    assert (route.kind, route.hosts, route.site_key) == (
        "literal",
        ("192.0.2.9",),
        "literal:192.0.2.9",
    )
    assert resolve(resolver, "[IPv6:2001:DB8::1]").mx_hosts[0].addresses == ("2001:db8::1",)
    assert isinstance(failure(resolver, "[not-an-ip]"), PermanentRoutingError)
    assert dns_server.count() == 0


def test_smarthost_bypasses_mx_for_every_domain(dns_server: DNSServer) -> None:
    resolver = make(dns_server, smarthost="127.0.0.1:2525")
    a = resolve(resolver, "example.com")
    b = resolve(resolver, "no-such-domain.example")
    for route in (a, b):
        assert route.kind == "smarthost"
        assert route.mx_hosts == ((0, "127.0.0.1", ("127.0.0.1",)),)
        assert route.port == 2525
    assert a.site_key == b.site_key == "smarthost:127.0.0.1:2525"
    assert dns_server.count() == 0


def test_smarthost_by_name_uses_system_resolver(dns_server: DNSServer) -> None:
    route = resolve(make(dns_server, smarthost=("LOCALHOST", 587)), "example.com")
    assert route.port == 587 and route.hosts == ("localhost",)
    assert "127.0.0.1" in route.mx_hosts[0].addresses
    assert dns_server.count() == 0


def test_parse_smarthost_forms() -> None:
    assert parse_smarthost("relay.example") == ("relay.example", 25)
    assert parse_smarthost("relay.example:587") == ("relay.example", 587)
    assert parse_smarthost("[::1]:2525") == ("::1", 2525)
    assert parse_smarthost(("Relay.Example.", 26)) == ("relay.example", 26)
    for bad in ["", "host:0", "host:99999", "a:b:c", "host:port"]:
        with pytest.raises(ConfigError):
            parse_smarthost(bad)


# -- caching ----------------------------------------------------------------


def test_second_lookup_sends_no_query(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    first = resolve(resolver, "example.com")
    sent = dns_server.count()
    assert sent == 1 + 3 * 2  # MX, then A and AAAA for three hosts
    assert resolve(resolver, "example.com") == first
    assert resolve(resolver, "EXAMPLE.COM.") == first
    assert dns_server.count() == sent
    assert (resolver.hits, resolver.misses) == (2, 1)


def test_mx_host_addresses_are_shared_between_domains(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    resolve(resolver, "example.com")
    resolve(resolver, "alias.example")  # CNAME to mx-b: its own name, asked once
    resolve(resolver, "dup.example")  # mx-b.example.com again: cached
    assert dns_server.count("mx-b.example.com", "A") == 1


def test_cache_expires_with_the_ttl(dns_server: DNSServer) -> None:
    clock = Clock()
    resolver = make(dns_server, clock=clock)
    route = resolve(resolver, "short.example")
    assert route.ttl == 30
    clock.now += 29
    resolve(resolver, "short.example")
    assert dns_server.count("short.example", "MX") == 1
    clock.now += 2
    resolve(resolver, "short.example")
    assert dns_server.count("short.example", "MX") == 2


def test_ttl_is_clamped(dns_server: DNSServer) -> None:
    clock = Clock()
    resolver = make(dns_server, clock=clock, min_ttl=120, max_ttl=200)
    assert resolve(resolver, "short.example").ttl == 120
    assert resolve(resolver, "example.com").ttl == 200
    clock.now += 119  # the 30 s record is kept for min_ttl
    resolve(resolver, "short.example")
    assert dns_server.count("short.example", "MX") == 1
    clock.now += 80  # the 300 s record only for max_ttl
    resolve(resolver, "example.com")
    assert dns_server.count("example.com", "MX") == 1
    clock.now += 2
    resolve(resolver, "example.com")
    assert dns_server.count("example.com", "MX") == 2


def test_negative_answers_are_cached(dns_server: DNSServer) -> None:
    clock = Clock()
    resolver = make(dns_server, clock=clock)
    for _ in range(3):
        failure(resolver, "no-such-domain.example")
        failure(resolver, "null.example")
    assert dns_server.count("no-such-domain.example", "MX") == 1
    assert dns_server.count("null.example", "MX") == 1
    clock.now += 61  # the SOA negative TTL
    failure(resolver, "no-such-domain.example")
    assert dns_server.count("no-such-domain.example", "MX") == 2


def test_temporary_failure_is_retried_after_temporary_ttl(dns_server: DNSServer) -> None:
    clock = Clock()
    resolver = make(dns_server, clock=clock, temporary_ttl=10)
    failure(resolver, "servfail.example")
    failure(resolver, "servfail.example")
    assert dns_server.count("servfail.example", "MX") == 1
    dns_server.zone["servfail.example"] = {"MX": ["10 mx-b.example.com."]}
    clock.now += 11
    assert resolve(resolver, "servfail.example").hosts == ("mx-b.example.com",)


def test_concurrent_lookups_share_one_query(dns_server: DNSServer) -> None:
    resolver = make(dns_server)

    async def many() -> list[Route]:
        return await asyncio.gather(*(resolver.resolve("example.com") for _ in range(50)))

    routes = run(many())
    assert len({r.site_key for r in routes}) == 1
    assert dns_server.count("example.com", "MX") == 1


def test_cache_is_bounded(dns_server: DNSServer) -> None:
    resolver = make(dns_server, cache_size=2)
    for domain in ["example.com", "implicit.example", "dup.example", "example.com"]:
        resolve(resolver, domain)
    assert dns_server.count("example.com", "MX") == 2
    assert len(resolver.sites()) <= 2


def test_clear_forgets_everything(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    resolve(resolver, "example.com")
    resolver.clear()
    assert resolver.sites() == {}
    resolve(resolver, "example.com")
    assert dns_server.count("example.com", "MX") == 2


# -- the route is what delivery connects to --------------------------------


def test_route_targets_reach_a_real_smtp_server(dns_server: DNSServer) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        resolver = make(dns_server, port=smtp.port)

        async def deliver() -> None:
            for target in await resolver.targets("local.example"):
                client = aiosmtplib.SMTP(
                    hostname=target.address, port=target.port, start_tls=False, timeout=5
                )
                async with client:
                    await client.sendmail(
                        "a@sender.example", ["b@local.example"], b"Subject: x\r\n\r\nhi\r\n"
                    )
                return

        run(deliver())
    assert [r.rcpt_tos for r in handler.received] == [["b@local.example"]]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_normalize_domain_never_raises_anything_else(text: str) -> None:
    try:
        out = normalize_domain(text)
    except PermanentRoutingError as exc:
        assert exc.enhanced_status == "5.1.2" and exc.permanent
        return
    assert out.isascii() and out == out.lower() and not out.endswith(".")
    assert normalize_domain(out) == out
