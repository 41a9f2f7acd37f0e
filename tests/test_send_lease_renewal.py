"""A connection lease is renewed while a long batch runs, so limits hold across processes.

Two schedulers (as two processes would) share one site's limit of one
connection through the same throttles. The lease lives 0.3 s and each
message waits 0.9 s for the reply to its end of data: renewed only
between batches, the lease expired mid-batch and the second scheduler
opened a second session beside the first.
"""

from __future__ import annotations

import asyncio

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.delivery.throttle import LocalThrottles
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import ScriptedSMTP


def test_two_schedulers_never_exceed_one_connection_during_long_batches() -> None:
    results: list[DeliveryResult] = []

    async def go(port: int) -> None:
        shared = LocalThrottles()

        def scheduler() -> Scheduler:
            return Scheduler(
                MXResolver(smarthost=("127.0.0.1", port)),
                results.append,
                throttles=shared,
                default_limits=SiteLimits(connections=1, tls="none"),
                retry=RetryPolicy(initial=0.01, attempts=3),
                lease_ttl=0.3,
            )

        async def run(s: Scheduler, prefix: str) -> None:
            for m in messages(2, prefix):
                await s.submit(m)
            await s.close()

        await asyncio.gather(run(scheduler(), "a"), run(scheduler(), "b"))

    with ScriptedSMTP(end_of_data_delay=0.9) as server:
        asyncio.run(go(server.port))
    assert sorted((r.status, r.attempts) for r in results) == [("delivered", 1)] * 4
    assert server.max_active == 1
