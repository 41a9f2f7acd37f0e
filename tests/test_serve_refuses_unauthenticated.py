"""`mailsflux serve` checks each tenant's DKIM key against DNS at start: a tenant
whose published key is another key's stops the server from starting, naming the
record; a tenant on a reserved domain beside it needs no records."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.errors import AuthenticationError
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec
from mailsflux.tenants import Tenant
from tests._auth import DKIM_NAME, DOMAIN, RELAY_IP, SELECTOR, write_key, zone
from tests._dns import DNSServer
from tests._serve import Running, server_config


def test_serve_refuses_a_tenant_with_the_wrong_key(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    _, other = write_key(tmp_path, "other.pem")
    demo, _ = write_key(tmp_path, "demo.pem")
    tenants = [
        Tenant(name="demo", domains=["demo.example"],
               dkim=[DKIMSpec(domain="demo.example", selector="s1", key=str(demo))]),
        Tenant(name="northwind", domains=[DOMAIN],
               dkim=[DKIMSpec(domain=DOMAIN, selector=SELECTOR, key=str(key))]),
    ]  # fmt: skip
    with DNSServer(zone(other)) as dns:
        delivery = DeliverySpec(
            relay="smtp+plain://127.0.0.1:1",
            nameservers=[f"127.0.0.1:{dns.port}"],
            source_ip=RELAY_IP,
        )
        config = server_config(tmp_path / "data", tenants, delivery)
        with pytest.raises(AuthenticationError) as caught:
            with Running(config):
                pass
        assert dns.count(DKIM_NAME, "TXT") == 1
    text = str(caught.value)
    assert "serve (tenant 'northwind') not started" in text
    assert f'publish {DKIM_NAME} TXT "{record}"' in text
