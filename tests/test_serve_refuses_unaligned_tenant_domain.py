"""`mailsflux serve` checks every domain a tenant lists, with the key that
signs its mail: a listed domain its only key (for another organization) does
not align with stops the server from starting."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.errors import AuthenticationError
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec
from mailsflux.tenants import Tenant
from tests._auth import DOMAIN, RELAY_IP, SELECTOR, write_key, zone
from tests._dns import DNSServer
from tests._serve import Running, server_config

OTHER = "fabrikam-mail.com"


def test_serve_refuses_a_listed_domain_its_key_does_not_align_with(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    records = zone(record)
    # The second domain publishes SPF and DMARC, but its mail is signed d=DOMAIN.
    records[OTHER] = {"TXT": [f'"v=spf1 ip4:{RELAY_IP} -all"']}
    records[f"_dmarc.{OTHER}"] = {"TXT": ['"v=DMARC1; p=reject"']}
    tenants = [
        Tenant(name="northwind", domains=[DOMAIN, OTHER],
               dkim=[DKIMSpec(domain=DOMAIN, selector=SELECTOR, key=str(key))]),
    ]  # fmt: skip
    with DNSServer(records) as dns:
        delivery = DeliverySpec(
            relay="smtp+plain://127.0.0.1:1",
            nameservers=[f"127.0.0.1:{dns.port}"],
            source_ip=RELAY_IP,
        )
        config = server_config(tmp_path / "data", tenants, delivery)
        with pytest.raises(AuthenticationError) as caught:
            with Running(config):
                pass
        assert dns.count(f"_dmarc.{OTHER}", "TXT") == 1
    text = str(caught.value)
    assert f"{OTHER} fails outbound authentication" in text
    assert f"From {OTHER} does not align with DKIM d={DOMAIN}" in text
