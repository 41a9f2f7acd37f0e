"""Names too long for DNS once the policy's prefix is added (``_mta-sts.``,
``_PORT._tcp.``) end the lookup with an answer, never an exception: such a
name can hold no record, so the domain has no policy (and its mail is not
deferred forever as "TLS policy lookup failed")."""

from __future__ import annotations

import asyncio

from mailsflux.delivery.mx import MXHost, MXResolver, Route
from mailsflux.delivery.tlspolicy import TLSPolicies
from tests._dns import DNSServer

LONG = ".".join(["a" * 60] * 4)[:245] + ".example"  # 253 octets: valid alone


def test_overlong_policy_names_mean_no_policy() -> None:
    async def scenario(dns: DNSServer) -> None:
        policies = TLSPolicies(MXResolver(nameservers=[dns.address]))
        route = Route(
            domain=LONG,
            kind="mx",
            mx_hosts=(MXHost(10, LONG, ("127.0.0.1",)),),
            port=25,
            site_key="k",
            ttl=300,
            secure=True,
        )
        tls = await policies.lookup(route)
        assert (tls.kind, tls.tlsa, tls.policy) == ("none", {}, None)

    with DNSServer({}) as dns:
        asyncio.run(scenario(dns))
