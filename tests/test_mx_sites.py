"""Sites: domains with the same MX host set share one queue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from mailsflux.delivery.mx import WELL_KNOWN_SITES, MXResolver, Site, site_key
from tests._dns import DNSServer

GMAIL_MX = [
    "5 gmail-smtp-in.l.google.com.",
    "10 alt1.gmail-smtp-in.l.google.com.",
    "20 alt2.gmail-smtp-in.l.google.com.",
    "30 alt3.gmail-smtp-in.l.google.com.",
    "40 alt4.gmail-smtp-in.l.google.com.",
]
WORKSPACE_MX = [
    "1 aspmx.l.google.com.",
    "5 alt1.aspmx.l.google.com.",
    "5 alt2.aspmx.l.google.com.",
    "10 alt3.aspmx.l.google.com.",
    "10 alt4.aspmx.l.google.com.",
]


def _hosts(records: list[str]) -> dict[str, Any]:
    return {r.split()[1].rstrip("."): {"A": ["192.0.2.10"]} for r in records}


ZONE: dict[str, Any] = {
    "gmail.com": {"MX": GMAIL_MX},
    "googlemail.com": {"MX": GMAIL_MX},
    # Same host set, other preferences: the same site (it is the set that counts).
    "reordered.example": {"MX": [f"10 {r.split()[1]}" for r in GMAIL_MX]},
    "workspace-a.example": {"MX": WORKSPACE_MX},
    "workspace-b.example": {"MX": WORKSPACE_MX},
    "outlook.com": {"MX": ["5 outlook-com.olc.protection.outlook.com."]},
    "hotmail.com": {"MX": ["2 hotmail-com.olc.protection.outlook.com."]},
    "one.example": {"MX": ["10 mx1.shared.example.", "20 mx2.shared.example."]},
    "two.example": {"MX": ["10 mx1.shared.example."]},
    "mixed.example": {"MX": ["10 mx1.shared.example.", "20 aspmx.l.google.com."]},
    "mx1.shared.example": {"A": ["192.0.2.21"]},
    "mx2.shared.example": {"A": ["192.0.2.22"]},
    "outlook-com.olc.protection.outlook.com": {"A": ["192.0.2.31"]},
    "hotmail-com.olc.protection.outlook.com": {"A": ["192.0.2.32"]},
    **_hosts(GMAIL_MX),
    **_hosts(WORKSPACE_MX),
}


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer(ZONE) as server:
        yield server


def sites(resolver: MXResolver, *domains: str) -> list[Site]:
    async def go() -> list[Site]:
        return [await resolver.site_for(d) for d in domains]

    return asyncio.run(go())


def make(server: DNSServer, **kw: Any) -> MXResolver:
    return MXResolver(nameservers=[server.address], timeout=2.0, lifetime=4.0, **kw)


def test_same_mx_set_shares_a_site(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    gmail, googlemail, reordered = sites(
        resolver, "gmail.com", "googlemail.com", "reordered.example"
    )
    assert gmail.key == googlemail.key == reordered.key
    assert gmail.key == "mx:gmail-smtp-in.l.google.com/5#" + gmail.key.rsplit("#", 1)[1]
    assert gmail.name is None
    assert gmail.mx_hosts[0].host == "gmail-smtp-in.l.google.com"
    assert reordered.domains == ("gmail.com", "googlemail.com", "reordered.example")
    assert set(resolver.sites()) == {gmail.key}


def test_different_mx_sets_are_different_sites(dns_server: DNSServer) -> None:
    resolver = make(dns_server)
    got = sites(
        resolver, "gmail.com", "workspace-a.example", "one.example", "two.example", "outlook.com"
    )
    assert len({s.key for s in got}) == 5
    a, b = sites(resolver, "workspace-a.example", "workspace-b.example")
    assert a.key == b.key and a.key.startswith("mx:aspmx.l.google.com/5#")
    assert b.domains == ("workspace-a.example", "workspace-b.example")
    assert sites(resolver, "two.example")[0].key == "mx:mx1.shared.example"
    assert sites(resolver, "one.example")[0].key.startswith("mx:shared.example/2#")


def test_site_key_is_stable_and_order_free() -> None:
    hosts = ["b.mx.example", "A.MX.example.", "c.mx.example"]
    assert site_key(hosts) == site_key(reversed(hosts)) == site_key([*hosts, "a.mx.example"])
    assert site_key(hosts).startswith("mx:mx.example/3#")
    assert site_key(["mx.one.example", "mx.two.test"]).startswith("mx:mx.one.example/2#")
    assert site_key(hosts) != site_key(hosts[:2])
    assert len(site_key(f"alt{i}.gmail-smtp-in.l.google.com" for i in range(50))) < 60


def test_named_sites_from_mx_patterns(dns_server: DNSServer) -> None:
    resolver = make(dns_server, site_names=WELL_KNOWN_SITES)
    gmail, workspace, outlook, hotmail, mixed, other = sites(
        resolver,
        "gmail.com",
        "workspace-a.example",
        "outlook.com",
        "hotmail.com",
        "mixed.example",
        "one.example",
    )
    assert gmail.key == workspace.key == "google" and gmail.name == "google"
    assert workspace.domains == ("gmail.com", "workspace-a.example")
    assert outlook.key == hotmail.key == "microsoft"
    # A pattern names a site only when every MX host matches it.
    assert mixed.key.startswith("mx:") and mixed.name is None
    assert other.key.startswith("mx:shared.example/")
    assert set(resolver.sites()) == {"google", "microsoft", mixed.key, other.key}


def test_site_names_are_tried_in_order() -> None:
    resolver = MXResolver(
        nameservers=[("127.0.0.1", 9)],
        site_names=[("alt*.gmail-smtp-in.l.google.com", "gmail-alt"), ("*.google.com", "google")],
    )
    assert resolver.name_for(["alt1.gmail-smtp-in.l.google.com"]) == "gmail-alt"
    assert resolver.name_for(["gmail-smtp-in.l.google.com"]) == "google"
    assert resolver.name_for(["mx.example"]) is None
    assert resolver.name_for([]) is None


def test_smarthost_puts_every_domain_in_one_site(dns_server: DNSServer) -> None:
    resolver = make(dns_server, smarthost="127.0.0.1:2525")
    a, b = sites(resolver, "gmail.com", "one.example")
    assert a.key == b.key == "smarthost:127.0.0.1:2525"
    assert b.domains == ("gmail.com", "one.example")
    assert dns_server.count() == 0
