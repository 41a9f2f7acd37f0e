"""A connection dropped mid-batch: what was not confirmed is sent again, nothing is lost."""

from __future__ import annotations

import asyncio

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult, RenderedMessage
from tests._scripted_smtp import ScriptedSMTP


def test_every_message_arrives_despite_drops() -> None:
    results: list[DeliveryResult] = []
    msgs = [
        RenderedMessage(
            mail_from="s@sender.example",
            rcpt_to=f"r{i}@example.com",
            data=b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i),
            message_id=str(i),
        )
        for i in range(12)
    ]

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(connections=2, tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=6),
        )
        for m in msgs:
            await s.submit(m)
        await s.close()

    # Every session breaks after its third message.
    with ScriptedSMTP(drop_after_messages=3) as server:
        asyncio.run(go(server.port))
    assert sorted(r.recipient for r in results) == sorted(m.rcpt_to for m in msgs)
    assert {r.status for r in results} == {"delivered"}
    assert any(r.attempts > 1 for r in results)
    # Each message reached the server at least once; ones whose reply was lost may twice.
    got = {b.split(b"\r\n", 1)[0] for b in server.bodies}
    assert got == {b"Subject: %d" % i for i in range(12)}
    assert server.sessions >= 4
