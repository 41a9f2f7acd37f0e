"""``Engine(redis=URL).submit(job_file)``: the job is put into Redis, two real
``mailsflux worker`` processes send it to a counting SMTP server, and the
embedding app follows it: the handle yields every row's result, the
engine's ``results()`` and ``on_result`` see them, and the counts add up."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from mailsflux import Engine
from mailsflux.types import DeliveryResult
from tests._engine import listening
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 120


def _reply(address: str, n: int) -> str | None:
    # Every tenth recipient does not exist: its result is a bounce, as locally.
    return "550 5.1.1 no such user" if address.startswith("user") and address[4] == "7" else None


def test_engine_enqueues_into_redis_and_follows_the_workers(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler(_reply)
    rows = people(ROWS)
    bounced = {r[0] for r in rows if r[0][4] == "7"}
    called: list[DeliveryResult] = []

    async def go() -> tuple[list[DeliveryResult], list[DeliveryResult], object]:
        engine = Engine(redis=redis_url, redis_prefix=prefix, on_result=called.append)
        async with engine:
            seen, listener = await listening(engine)
            handle = await engine.submit(job)
            got = [r async for r in handle]
            summary = await handle.wait()
        await listener
        return got, seen, summary

    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", attempts=1)
        with Workers(2, redis_url, prefix, tmp_path) as workers:
            got, seen, summary = asyncio.run(go())
        logs = workers.log(0) + workers.log(1)

    # Every row's result reached the app once, with its real outcome.
    assert sorted(r.row for r in got) == list(range(2, ROWS + 2)), logs  # line 1: the header
    outcome = {r.recipient: r.status for r in got}
    assert outcome == {r[0]: ("bounced" if r[0] in bounced else "delivered") for r in rows}
    assert all(r.code == 550 for r in got if r.status == "bounced")
    assert Counter(r.row for r in seen) == Counter(r.row for r in got)
    assert Counter(r.row for r in called) == Counter(r.row for r in got)
    assert summary.sent == ROWS - len(bounced)  # type: ignore[attr-defined]
    assert summary.failed == len(bounced)  # type: ignore[attr-defined]
    assert not summary.interrupted  # type: ignore[attr-defined]
    # The workers did the sending: each delivered recipient arrived once.
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter({r[0]: 1 for r in rows if r[0] not in bounced})
