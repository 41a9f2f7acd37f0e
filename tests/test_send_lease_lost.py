"""A lease lost mid-batch: the batch finishes, the session takes no more, a new lease is taken.

The Redis throttle's lease set is deleted while the first session waits
for a slow end of data (as a Redis failover without the data would). The
renewal then fails; before, the failure was ignored and the session went
on sending without a slot.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from mailsflux.delivery import RedisThrottles
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import Conn, ScriptedSMTP

pytestmark = pytest.mark.redis


def test_a_lost_lease_ends_the_session_after_its_batch(redis_url: str, prefix: str) -> None:
    n, burst = 6, 2  # the burst makes the batches 2 messages each
    results: list[DeliveryResult] = []
    conns: list[Conn] = []
    client = redis.Redis.from_url(redis_url)

    def script(cmd: str, conn: Conn) -> str | None:
        if conn not in conns:
            conns.append(conn)
        if cmd == "." and len(conns) == 1 and conn.messages == 1:
            for key in client.scan_iter(match=f"{prefix}:*:conn:*"):
                client.delete(key)
        return None

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            throttles=RedisThrottles(redis_url, prefix=prefix),
            default_limits=SiteLimits(connections=1, tls="none", rate=100.0, burst=burst),
            retry=RetryPolicy(initial=0.01, attempts=3),
            lease_ttl=0.3,
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()
        await s.throttles.close()

    try:
        with ScriptedSMTP(script=script, end_of_data_delay=0.5) as server:
            asyncio.run(go(server.port))
    finally:
        client.close()
    assert sorted((r.status, r.attempts) for r in results) == [("delivered", 1)] * n
    # The first session finished its batch in flight, then took no more.
    assert conns[0].messages == burst
    assert len(conns) >= 2 and sum(c.messages for c in conns) == n
