"""``Engine(redis=URL).send()`` waits for its message's result from the
workers. If the recipient is erased (``privacy erase --redis``) while the
message still waits in Redis, the send returns at once as failed
(``erased``), never sent: an erased row is announced to its submitter as
the workers announce theirs. The other recipient's message still goes out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import DeliveryResult, Engine, Message
from mailsflux.gateway.privacy import matcher
from mailsflux.jobs.redis_privacy import person
from mailsflux.spool.redis_spool import RedisSpool
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis


def test_send_of_an_erased_recipient_returns_failed(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()

    def message(to: str) -> Message:
        return Message(sender="news@sender.example", to=to, subject="Hi", text="Hello there")

    async def go() -> tuple[DeliveryResult, DeliveryResult, int]:
        async with Engine(config, redis=redis_url, redis_prefix=prefix) as engine:
            erased = asyncio.ensure_future(engine.send(message("ann@example.com")))
            kept = asyncio.ensure_future(engine.send(message("bo@example.com")))
            await asyncio.sleep(0.5)  # both in Redis; no worker runs yet
            assert not erased.done()
            with RedisSpool(redis_url, prefix=prefix) as spool:
                found = person(spool, matcher("ann@example.com"), erase=True)
            first = await asyncio.wait_for(erased, 30)
            with Workers(1, redis_url, prefix, tmp_path):
                second = await asyncio.wait_for(kept, 30)
        return first, second, len(found)

    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url, attempts=1)
        first, second, found = asyncio.run(go())

    assert found == 1
    assert first.status == "failed" and first.category == "erased", first
    assert second.status == "delivered", second
    assert [m.rcpt_tos for m in handler.received] == [["bo@example.com"]]
