"""``Engine.send`` From a domain the engine's keys do not cover (its key is
for a reserved domain, so nothing was checked at start) is checked once, by
DNS, and refused under "enforce"; a second message asks DNS nothing more."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import Engine, Message
from mailsflux.errors import AuthenticationError
from tests._auth import DOMAIN, RELAY_IP, write_key, zone
from tests._dns import DNSServer
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def test_send_from_an_unchecked_domain_is_refused_once(tmp_path: Path) -> None:
    _, record = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer(zone(record)) as dns, SMTPServer(handler) as smtp:
        config = engine_config(
            tmp_path, smtp.url, nameservers=[f"127.0.0.1:{dns.port}"], source_ip=RELAY_IP
        )
        message = Message(sender=f"News <news@{DOMAIN}>", to="a@example.org", subject="s", text="t")

        async def go() -> list[str]:
            errors = []
            async with Engine(config) as engine:
                for _ in range(2):
                    with pytest.raises(AuthenticationError) as caught:
                        await engine.send(message)
                    errors.append(str(caught.value))
            return errors

        errors = asyncio.run(go())
        asked = dns.count(f"_dmarc.{DOMAIN}", "TXT")
    assert handler.attempts == {}
    assert asked == 1
    # Signed for sender.example: the From domain does not align.
    assert f"mail From {DOMAIN} not sent" in errors[0]
    assert f"From {DOMAIN} does not align with DKIM d=sender.example" in errors[0]
    assert errors[1] == errors[0]
