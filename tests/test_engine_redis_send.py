"""``Engine(redis=URL)``: ``send()`` and ``enqueue()`` of one message go into
the engine's outbox job in Redis; a real ``mailsflux worker`` process (no
DKIM key) delivers them, and each result comes back to the engine once:
``send()`` returns it, ``on_result`` sees every one."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from mailsflux import DeliveryResult, Engine, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import outbox_counts
from tests._workers import Workers

pytestmark = pytest.mark.redis

SENT = 20
QUEUED = 10


def _reply(address: str, n: int) -> str | None:
    return "550 5.1.1 no such user" if address.startswith("gone") else None


def test_engine_send_and_enqueue_go_through_redis_workers(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler(_reply)
    called: list[DeliveryResult] = []

    def message(to: str) -> Message:
        return Message(sender="news@sender.example", to=to, subject="Hi", text="Hello there")

    async def go() -> tuple[list[DeliveryResult], list[str]]:
        async with Engine(
            config, redis=redis_url, redis_prefix=prefix, on_result=called.append
        ) as engine:
            ids = [await engine.enqueue(message(f"q{i}@example.org")) for i in range(QUEUED)]
            sends = [message(f"s{i}@example.com") for i in range(SENT)] + [
                message("gone@example.com")
            ]
            got = await asyncio.gather(*(engine.send(m) for m in sends))
            while len(called) < SENT + 1 + QUEUED:  # enqueued ones come back too
                await asyncio.sleep(0.1)
        return list(got), ids

    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url, attempts=1)
        with Workers(1, redis_url, prefix, tmp_path) as workers:
            got, ids = asyncio.run(asyncio.wait_for(go(), 60))
        logs = workers.log(0)

    assert [r.status for r in got] == ["delivered"] * SENT + ["bounced"], logs
    assert got[-1].code == 550
    assert Counter(r.message_id for r in called) == Counter([r.message_id for r in got] + ids), logs
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    expected = [f"s{i}@example.com" for i in range(SENT)] + [
        f"q{i}@example.org" for i in range(QUEUED)
    ]
    assert arrived == Counter(expected)
    assert all(b"DKIM-Signature:" in m.data for m in handler.received)
    # The worker sent them: the outbox job's counts in Redis say so.
    assert outbox_counts(redis_url, prefix) == {"delivered": SENT + QUEUED, "bounced": 1}
