"""Engine.send without a relay: MX routing from DNS on loopback; null MX bounces."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message
from tests._dns import DNSServer
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def test_sends_route_by_mx_and_a_null_mx_bounces(tmp_path: Path) -> None:
    handler = RecordingHandler()
    zone = {
        "example.com": {"MX": ["10 mx.shared.test."]},
        "mx.shared.test": {"A": ["127.0.0.1"]},
        "null.example": {"MX": ["0 ."]},
    }
    with SMTPServer(handler) as smtp, DNSServer(zone) as dns:
        config = engine_config(tmp_path, "")
        config.delivery.relay = None
        config.delivery.tls = "none"
        config.delivery.mx_port = smtp.port
        config.delivery.nameservers = [f"127.0.0.1:{dns.port}"]

        async def go() -> list[DeliveryResult]:
            async with Engine(config) as engine:
                return list(
                    await asyncio.gather(
                        *(
                            engine.send(
                                Message(sender="a@sender.example", to=to, subject="s", text="t")
                            )
                            for to in ("a@example.com", "d@null.example")
                        )
                    )
                )

        delivered, bounced = asyncio.run(go())
    assert delivered.status == "delivered" and delivered.code == 250
    assert bounced.status == "bounced" and bounced.code == 556
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
