"""An embedder's ``Engine.submit`` of a batch From a domain whose DMARC record is
missing raises AuthenticationError naming the record, and sends nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import Batch, Config, Delivery, DKIMKey, Engine, Message
from mailsflux.errors import AuthenticationError
from tests._auth import DOMAIN, RELAY_IP, SELECTOR, write_key, zone
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_engine_submit_refuses(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    z = zone(record)
    del z[f"_dmarc.{DOMAIN}"]
    handler = RecordingHandler()
    with DNSServer(z) as dns, SMTPServer(handler) as smtp:
        config = Config(
            dkim=[DKIMKey(domain=DOMAIN, selector=SELECTOR, key=str(key))],
            delivery=Delivery(
                relay=smtp.url, nameservers=[f"127.0.0.1:{dns.port}"], source_ip=RELAY_IP
            ),
            base=str(tmp_path),
        )
        batch = Batch(
            template=Message(sender=f"news@{DOMAIN}", to="", subject="Hi", text="Hello"),
            recipients=["a@example.org"],
        )

        async def go() -> None:
            # Not checked on entering: the batch is what submit() checks.
            async with Engine(config, check_authentication=False) as engine:
                await engine.submit(batch)

        with pytest.raises(AuthenticationError) as caught:
            asyncio.run(go())
    assert handler.attempts == {}
    assert f'publish _dmarc.{DOMAIN} TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"' in str(
        caught.value
    )
