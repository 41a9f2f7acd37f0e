"""A cached MTA-STS policy is fetched again once half its max_age has
passed, though the TXT id is unchanged (RFC 8461 5.1: refresh before it
expires, so a domain never drops out of its policy); when that refetch fails
the cached policy stays in force and the failure is counted. Clocks are
injected; the DNS and HTTPS policy servers are real."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.tlspolicy import TLSPolicies
from tests._dns import DNSServer
from tests._policy import CA, policy, sts_zone

MAX_AGE = 86400


def test_policy_refetched_after_half_its_max_age(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    now = [1_000_000.0]
    web = ca.policy_server(policy("enforce", "mx.example.com", max_age=MAX_AGE))

    async def scenario(dns: DNSServer) -> None:
        policies = TLSPolicies(
            MXResolver(nameservers=[dns.address]),
            verify=ssl.create_default_context(cafile=str(ca.file)),
            cache=tmp_path / "mta-sts.json",
            clock=lambda: now[0],
            wall=lambda: now[0],
        )
        route = await MXResolver(nameservers=[dns.address]).resolve("example.com")
        first = await policies.lookup(route)
        assert (first.kind, web.requests) == ("sts", 1)

        now[0] += MAX_AGE / 4  # still fresh: the same id is not fetched again
        assert (await policies.lookup(route)).policy == first.policy
        assert web.requests == 1

        now[0] += MAX_AGE / 4 + 1  # past half its max_age
        second = await policies.lookup(route)
        assert web.requests == 2
        assert second.policy is not None and first.policy is not None
        assert second.policy.fetched > first.policy.fetched

        web.stop()
        now[0] += MAX_AGE / 2 + 1  # due again, and the server is gone
        third = await policies.lookup(route)
        assert third.policy == second.policy  # still in force
        assert policies.counts["example.com"].failures == {"sts-policy-fetch-error": 1}

    with web, DNSServer(sts_zone(web)) as dns:
        asyncio.run(scenario(dns))
