"""A DANE policy holds only for the MX hosts it was looked up for: after the
domain's MX moves from mx1 to mx2 (both with TLSA records) within the
policy's cache lifetime, the new route finds no cached policy (it is looked
up again, and mx2's records found), and the old policy given the new route
opens no session at all: mx2 is never read as "no TLSA records"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.tlspolicy import TLSPolicies
from mailsflux.errors import TemporaryDeliveryError
from tests._dns import AD, DNSServer

ZONE: dict[str, Any] = {
    "example.com": {AD: True, "MX": ["10 mx1.example.com."]},
    "mx1.example.com": {AD: True, "A": ["127.0.0.1"]},
    "mx2.example.com": {AD: True, "A": ["127.0.0.1"]},
    "_25._tcp.mx1.example.com": {AD: True, "TLSA": ["3 1 1 " + "ab" * 32]},
    "_25._tcp.mx2.example.com": {AD: True, "TLSA": ["3 1 1 " + "cd" * 32]},
}


def test_a_changed_mx_is_looked_up_again() -> None:
    async def scenario(dns: DNSServer) -> None:
        policies = TLSPolicies(MXResolver(nameservers=[dns.address]), mta_sts=False)
        old_route = await MXResolver(nameservers=[dns.address]).resolve("example.com")
        old = await policies.lookup(old_route)
        assert (old.kind, set(old.tlsa)) == ("dane", {"mx1.example.com"})
        assert policies.cached(old_route) is old

        dns.zone["example.com"] = {AD: True, "MX": ["10 mx2.example.com."]}
        route = await MXResolver(nameservers=[dns.address]).resolve("example.com")
        assert policies.cached(route) is None

        opened: list[str] = []

        async def open_(target: Any, mode: Any, ctx: Any, check: Any) -> object:
            opened.append(target.host)
            return object()

        with pytest.raises(TemporaryDeliveryError):
            await policies.connect(old, route, open_, "opportunistic")
        assert opened == []
        new = await policies.lookup(route)
        assert (new.kind, set(new.tlsa)) == ("dane", {"mx2.example.com"})

    with DNSServer(ZONE) as dns:
        asyncio.run(scenario(dns))
