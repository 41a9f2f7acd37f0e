"""A lease lost while the session waits for a rate grant: the next batch waits for a new one.

The lease lives 0.3 s; the site's rate (1/s) makes each batch after the
first wait about a second for its grant, and while it waits the lease set
is deleted (as a Redis failover without the data would), so the renewal
fails. Before, lost leases were checked only before that wait, and the
next batch went out on the old session without a slot.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis

from mailsflux.delivery import RedisThrottles
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import Conn, ScriptedSMTP

pytestmark = pytest.mark.redis


def test_a_lease_lost_during_the_grant_wait_is_replaced(redis_url: str, prefix: str) -> None:
    n = 3
    results: list[DeliveryResult] = []
    conns: list[Conn] = []
    client = redis.Redis.from_url(redis_url)
    timers: list[threading.Timer] = []

    def lose_leases() -> None:
        for key in client.scan_iter(match=f"{prefix}:*:conn:*"):
            client.delete(key)

    def script(cmd: str, conn: Conn) -> str | None:
        if conn not in conns:
            conns.append(conn)
        if cmd == ".":
            # Some time into the next grant's wait (not timed: the wait is ~1 s).
            timer = threading.Timer(0.2, lose_leases)
            timers.append(timer)
            timer.start()
        return None

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            throttles=RedisThrottles(redis_url, prefix=prefix),
            default_limits=SiteLimits(connections=1, tls="none", rate=1.0, burst=1),
            retry=RetryPolicy(initial=0.01, attempts=3),
            lease_ttl=0.3,
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()
        await s.throttles.close()

    try:
        with ScriptedSMTP(script=script) as server:
            asyncio.run(go(server.port))
    finally:
        for timer in timers:
            timer.join()
        client.close()
    assert sorted((r.status, r.attempts) for r in results) == [("delivered", 1)] * n
    # Each lease was lost before the next batch: every session sent one message.
    assert [c.messages for c in conns] == [1] * n
