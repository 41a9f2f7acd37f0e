"""A result callback that raises (a locked SQLite, a full disk) neither resends nor loses.

Before, the worker re-deferred its whole batch, delivered messages
included: with 5 messages the server received 9 and one result was lost.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import ScriptedSMTP


def test_a_failing_callback_does_not_resend_or_lose_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    n = 5
    calls: list[DeliveryResult] = []

    def on_result(r: DeliveryResult) -> None:
        calls.append(r)
        if len(calls) in (2, 4):
            raise sqlite3.OperationalError("database is locked")

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            on_result,
            default_limits=SiteLimits(connections=1, tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=3),
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()
        assert s.callback_failures == 2

    with ScriptedSMTP() as server:
        asyncio.run(go(server.port))
    assert len(server.bodies) == n
    # Every message has exactly one final outcome, reported once.
    assert sorted(r.recipient for r in calls) == [f"r{i}@example.com" for i in range(n)]
    assert {(r.status, r.attempts) for r in calls} == {("delivered", 1)}
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "database is locked" in err[0], err
