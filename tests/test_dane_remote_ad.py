"""The AD bit crosses the network unprotected, so it is believed only from
nameservers on loopback, unless ``[delivery] trust_remote_ad`` says the path
to remote ones is trusted. The loopback case is the test DNS server's (every
DANE test relies on it); the remote cases are checked on the resolver's
setting alone (no query need leave the host)."""

from __future__ import annotations

import asyncio

import dns.name
import dns.rdatatype

from mailsflux.delivery.mx import MXResolver
from tests._dns import AD, DNSServer


def test_ad_believed_from_loopback_only_unless_trusted() -> None:
    async def secure(resolver: MXResolver) -> bool:
        name = dns.name.from_text("example.com.")
        return (await resolver.query(name, dns.rdatatype.MX))[2]

    with DNSServer({"example.com": {AD: True, "MX": ["10 mx.example.com."]}}) as dns_:
        assert asyncio.run(secure(MXResolver(nameservers=[dns_.address])))

    remote = MXResolver(nameservers=["192.0.2.53", ("127.0.0.1", 53)])
    remote._dns()
    assert not remote._ad_trusted
    trusted = MXResolver(nameservers=["192.0.2.53"], trust_remote_ad=True)
    trusted._dns()
    assert trusted._ad_trusted
