"""A send cancelled while its route is being looked up does not stop the Engine from closing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Engine, Message
from mailsflux.delivery.mx import MXResolver, Route
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


class HeldResolver(MXResolver):
    """Answers only when released, so a send can be cancelled mid-lookup."""

    def __init__(self, port: int) -> None:
        super().__init__(smarthost=("127.0.0.1", port))
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def resolve(self, domain: str) -> Route:
        self.asked.set()
        await self.release.wait()
        return await super().resolve(domain)


def test_leaving_after_a_send_cancelled_in_the_lookup_completes(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)

        async def go() -> None:
            resolver = HeldResolver(server.port)
            engine = Engine(config, resolver=resolver)
            await engine.__aenter__()
            message = Message(sender="a@sender.example", to="x@example.com", subject="s", text="t")
            send = asyncio.ensure_future(engine.send(message))
            await resolver.asked.wait()
            send.cancel()
            await asyncio.gather(send, return_exceptions=True)
            assert send.cancelled()
            # The bound is the test's own guard against a hang, not a timing claim.
            await asyncio.wait_for(engine.__aexit__(None, None, None), 10)

        asyncio.run(go())
    assert handler.received == []
