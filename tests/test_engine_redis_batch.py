"""``Engine(redis=URL).submit(Batch)``: the engine composes and signs each
message, puts the sealed signed bytes into Redis, two real ``mailsflux
worker`` processes (which have no templates and no DKIM key) send them to a
counting SMTP server, and the embedding app follows the job: each recipient
arrives once, signed, and each result reaches the app once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import redis

from mailsflux import Batch, Engine, Message
from mailsflux.types import DeliveryResult
from tests._engine import engine_config, listening
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 100


def _reply(address: str, n: int) -> str | None:
    # Every recipient whose number ends in 7 does not exist: a bounce.
    return "550 5.1.1 no such user" if address.split("@")[0].endswith("7") else None


def test_engine_batch_is_sent_by_redis_workers(tmp_path: Path, redis_url: str, prefix: str) -> None:
    handler = RecordingHandler(_reply)
    emails = [f"r{i}@example.{('com', 'org')[i % 2]}" for i in range(ROWS)]
    bounced = {e for e in emails if e.split("@")[0].endswith("7")}
    called: list[DeliveryResult] = []
    template = Message(
        sender="news@sender.example",
        to="",
        subject="Hello {{n}}",
        text="Hi {{n}}, a batch message.",
        tags=("launch",),
    )
    rows = [{"email": e, "n": str(i)} for i, e in enumerate(emails)]
    # A bad row is skipped by the engine and counted, never put into Redis.
    rows.insert(10, {"email": "not an address", "n": "x"})

    async def go() -> tuple[list[DeliveryResult], list[DeliveryResult], object, list[object]]:
        engine = Engine(config, redis=redis_url, redis_prefix=prefix, on_result=called.append)
        async with engine:
            seen, listener = await listening(engine)
            handle = await engine.submit(Batch(template=template, recipients=rows, name="launch"))
            got = [r async for r in handle]
            summary = await handle.wait()
            problems = list(handle.problems)
        await listener
        return got, seen, summary, problems

    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url, attempts=1)
        with Workers(2, redis_url, prefix, tmp_path) as workers:
            got, seen, summary, problems = asyncio.run(go())
        logs = workers.log(0) + workers.log(1)

    # Every good row's result reached the app once, with its real outcome.
    assert len(got) == ROWS, logs
    outcome = {r.recipient: r.status for r in got}
    assert outcome == {e: ("bounced" if e in bounced else "delivered") for e in emails}, logs
    assert all(r.code == 550 for r in got if r.status == "bounced")
    assert all(r.tags == ("launch",) for r in got)
    assert Counter(r.row for r in seen) == Counter(r.row for r in got)
    assert Counter(r.row for r in called) == Counter(r.row for r in got)
    assert summary.sent == ROWS - len(bounced)  # type: ignore[attr-defined]
    assert summary.failed == len(bounced)  # type: ignore[attr-defined]
    assert summary.skipped == 1  # type: ignore[attr-defined]
    assert not summary.interrupted  # type: ignore[attr-defined]
    assert len(problems) == 1 and "row 11" in str(problems[0])
    # The workers did the sending: each delivered recipient arrived once, signed
    # by the engine (the workers hold no DKIM key).
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter({e: 1 for e in emails if e not in bounced})
    assert all(b"DKIM-Signature:" in m.data for m in handler.received)
    assert {b"Subject: Hello 3" in m.data for m in handler.received} == {True, False}
    # Nothing of the batch is left in Redis in the clear, and its stream is empty.
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(f"{prefix}:*"):
            if client.type(key) == b"hash":
                blob = b"".join(client.hgetall(key).values())
            elif client.type(key) == b"string":
                blob = client.get(key) or b""
            else:
                continue
            assert b"example.com" not in blob.replace(b"\x1fexample.com", b"")
            assert b"Hello" not in blob
    finally:
        client.close()
