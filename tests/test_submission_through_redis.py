"""SMTP submission in front of engines with ``redis=URL`` (``serve`` with
``[redis]`` and ``[submission]``): a message accepted with 250 is in Redis,
signed, and a real ``mailsflux worker`` process, which holds no DKIM key,
delivers one copy to each recipient; nothing in Redis holds an address or
the body in the clear."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record
from tests._redis import outbox_counts
from tests._submission import SENDER, message, submission, until
from tests._workers import Workers

pytestmark = pytest.mark.redis

RCPTS = ["ann@x.test", "bob@x.test", "cy@x.test"]


def test_submitted_message_goes_out_through_redis_workers(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    seen_in_redis: list[bytes] = []
    entries: list[dict[bytes, bytes]] = []

    def scan() -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            for k in client.scan_iter(f"{prefix}*"):
                kind = client.type(k)
                if kind == b"string":
                    seen_in_redis.append(client.get(k) or b"")
                elif kind == b"hash":
                    seen_in_redis.extend(client.hvals(k))
                elif kind == b"stream":
                    for _, fields in client.xrange(k):
                        entries.append(fields)
                        seen_in_redis.extend(fields.values())
        finally:
            client.close()

    async def go(mx_url: str) -> tuple[str, str, dict[str, int]]:
        options = {"redis": redis_url, "redis_prefix": prefix}
        async with submission(tmp_path, mx_url, engine_options=options) as s:
            c = await s.logged_in()
            code, reply = await c.sendmail(SENDER, RCPTS, message("through redis"))
            await c.quit()
            assert all(v[0] == 250 for v in code.values()), code
            scan()  # before any worker runs: the 250 means it is in Redis
            with Workers(1, redis_url, prefix, tmp_path) as workers:
                assert await until(lambda: len(handler.received) == len(RCPTS), timeout=60)
                assert await until(lambda: outbox_counts(redis_url, prefix).get("delivered") == 3)
            return reply, workers.log(0), outbox_counts(redis_url, prefix)

    with SMTPServer(handler) as mx:
        reply, log, counts = asyncio.run(go(mx.url))
    # One stream entry, three copies (one a recipient), waiting for a worker.
    assert [int(e[b"n"]) for e in entries if b"rows" in e] == [3], entries
    assert counts == {"delivered": 3}, log
    assert sorted(r.rcpt_tos[0] for r in handler.received) == RCPTS, log
    message_id = reply.removeprefix("2.0.0 OK queued as ")
    # The listener's engine signed it (the worker has no key): each copy
    # carries the tenant's signature, which verifies after the trip.
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    for r in handler.received:
        assert message_id.encode() in r.data
        assert dkim_verify(r.data, record, selector="s1", domain="acme.example")
    blob = b"\n".join(seen_in_redis)
    body = b"Hello from the submission test"
    for secret in [*(a.encode() for a in RCPTS), SENDER.encode(), body]:
        assert secret not in blob
