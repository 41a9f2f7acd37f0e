"""A 250 means stored: messages acknowledged while the relay is down are
delivered by the next gateway on the same data, after this one has gone."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import msgspec

from mailsflux.gateway import Gateway
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._submission import SENDER, message, submission, until


def test_acknowledged_messages_survive_the_gateway(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"smtp+plain://127.0.0.1:{s.getsockname()[1]}"  # closed: nothing listens
    handler = RecordingHandler()
    # Deferred messages are due again within a second (not after 5 minutes).
    quick = msgspec.structs.replace(delivery(nowhere), queue_initial=0.5, queue_max=1.0)

    async def accept_while_relay_is_down() -> list[str]:
        async with submission(tmp_path, nowhere, retry=quick) as s:
            c = await s.logged_in()
            ids = []
            for i in range(3):
                _, reply = await c.sendmail(SENDER, [f"r{i}@x.test"], message(f"m{i}"))
                ids.append(reply.removeprefix("2.0.0 OK queued as "))
            await c.quit()
            return ids

    async def next_gateway() -> None:
        spec = msgspec.structs.replace(quick, relay=mx.url)
        gw = Gateway(two_tenants(tmp_path), data_dir=tmp_path / "data", delivery=spec)
        async with gw:
            assert await until(lambda: len(handler.received) == 3, timeout=60)

    ids = asyncio.run(accept_while_relay_is_down())
    assert handler.received == []
    with SMTPServer(handler) as mx:
        asyncio.run(next_gateway())
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "r0@x.test",
        "r1@x.test",
        "r2@x.test",
    ]
    assert all(any(i.encode() in r.data for r in handler.received) for i in ids)
