"""A key with ``generate = true`` for a real domain is made when the Engine
starts and checked then: under "enforce" the engine does not start, and the
error names the TXT record of the new key to publish."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import Config, Delivery, DKIMKey, Engine
from mailsflux.dkim import dns_txt_record
from mailsflux.errors import AuthenticationError
from tests._auth import DKIM_NAME, DOMAIN, RELAY_IP, SELECTOR, write_key, zone
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_generated_key_is_checked_at_start(tmp_path: Path) -> None:
    _, published = write_key(tmp_path, "published.pem")
    new_key = tmp_path / "dkim" / "new.pem"
    handler = RecordingHandler()
    with DNSServer(zone(published)) as dns, SMTPServer(handler) as smtp:
        config = Config(
            dkim=[
                DKIMKey(
                    domain=DOMAIN, selector=SELECTOR, key=str(new_key), generate=True, bits=1024
                )
            ],
            delivery=Delivery(
                relay=smtp.url, nameservers=[f"127.0.0.1:{dns.port}"], source_ip=RELAY_IP
            ),
            base=str(tmp_path),
        )

        async def go() -> None:
            async with Engine(config):
                pass

        with pytest.raises(AuthenticationError) as caught:
            asyncio.run(go())
        assert dns.count(DKIM_NAME, "TXT") == 1
    assert new_key.exists()
    record = dns_txt_record(new_key.read_bytes())
    assert f'publish {DKIM_NAME} TXT "{record}"' in str(caught.value)
    assert handler.attempts == {}
