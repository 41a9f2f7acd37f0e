"""abort() wakes a submit() waiting for room; a cancelled close() can be called again.

Before, a producer blocked on back-pressure hung for ever after abort(),
and a close() cancelled by a timeout left a scheduler that no close()
could finish ("called twice").
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import Scheduler, SiteLimits
from mailsflux.errors import SchedulerClosedError
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import ScriptedSMTP


# The timeout guards against the old hang; nothing here is timed.
@pytest.mark.timeout(60)
def test_abort_wakes_a_submit_waiting_for_room() -> None:
    async def go(port: int) -> BaseException | None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            lambda r: None,
            default_limits=SiteLimits(tls="none", connections=1),
            max_queued=2,
        )

        async def producer() -> None:
            for m in messages(50):
                await s.submit(m)

        task = asyncio.create_task(producer())
        while s._queued < s.max_queued:  # the producer now waits for room
            await asyncio.sleep(0.01)
        await s.abort()
        try:
            await task
        except SchedulerClosedError as exc:
            return exc
        return None

    with ScriptedSMTP(end_of_data_delay=0.5) as server:
        exc = asyncio.run(go(server.port))
    assert isinstance(exc, SchedulerClosedError) and "abort" in str(exc)


@pytest.mark.timeout(60)
def test_a_cancelled_close_can_be_called_again() -> None:
    n = 3
    results: list[DeliveryResult] = []

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(tls="none", connections=1),
        )
        for m in messages(n):
            await s.submit(m)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(s.close(), 0.05)  # the server is slower than that
        await s.close()
        with pytest.raises(SchedulerClosedError):
            await s.close()

    with ScriptedSMTP(end_of_data_delay=0.3) as server:
        asyncio.run(go(server.port))
    assert sorted((r.recipient, r.status) for r in results) == [
        (m.rcpt_to, "delivered") for m in messages(n)
    ]
