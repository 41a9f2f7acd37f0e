"""An Engine whose configured DKIM key is not the one in DNS does not start
(``async with`` raises, naming the record); with ``check_authentication=False``
(a caller that checked already) it does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import Config, Delivery, DKIMKey, Engine
from mailsflux.errors import AuthenticationError
from tests._auth import DKIM_NAME, DOMAIN, RELAY_IP, SELECTOR, write_key, zone
from tests._dns import DNSServer


def test_engine_does_not_start_with_the_wrong_key(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    _, other = write_key(tmp_path, "other.pem")
    with DNSServer(zone(other)) as dns:
        config = Config(
            dkim=[DKIMKey(domain=DOMAIN, selector=SELECTOR, key=key.name)],
            delivery=Delivery(
                relay="smtp+plain://127.0.0.1:1",
                nameservers=[f"127.0.0.1:{dns.port}"],
                source_ip=RELAY_IP,
            ),
            base=str(tmp_path),
        )

        async def enter(check: bool) -> None:
            async with Engine(config, check_authentication=check):
                pass

        with pytest.raises(AuthenticationError) as caught:
            asyncio.run(enter(True))
        asyncio.run(enter(False))
        assert dns.count(DKIM_NAME, "TXT") == 1
    assert f'publish {DKIM_NAME} TXT "{record}"' in str(caught.value)
    assert "engine 'engine' not started" in str(caught.value)
