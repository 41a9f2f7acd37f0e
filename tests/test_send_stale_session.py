"""A session the server closed while we waited for a throttle grant costs no attempt.

The server closes sessions idle for 0.2 s (as Postfix does after
smtpd_timeout); the site's rate (1/s) makes every batch after the first wait
far longer than that. Before, the liveness check ran before the wait, so
each later message went out on a dead session and lost an attempt.
"""

from __future__ import annotations

import asyncio

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import ScriptedSMTP


def test_a_session_closed_during_the_throttle_wait_costs_no_attempt() -> None:
    n = 3
    results: list[DeliveryResult] = []

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(connections=1, tls="none", rate=1.0, burst=1),
            # One attempt only: a message charged for our stale session would fail the test.
            retry=RetryPolicy(initial=0.01, attempts=1),
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()

    with ScriptedSMTP(idle_close=0.2) as server:
        asyncio.run(go(server.port))
    assert sorted((r.recipient, r.status, r.attempts) for r in results) == [
        (f"r{i}@example.com", "delivered", 1) for i in range(n)
    ]
    assert len(server.bodies) == n
    assert server.sessions >= 2  # the closed session was replaced, not used
