"""During a Redis outage stderr stays at one line, even while a worker holds a lease.

Redis dies after the first delivery. The first worker keeps its lease (it
is renewed only every 40 s) and sends without asking Redis anything (no
rate is set); a second worker cannot get a lease. Before, every batch of the
first worker printed "the throttle backend answers again" although Redis
was down, alternating with the second worker's "unavailable" lines.
"""

from __future__ import annotations

import asyncio

import pytest

from mailsflux.delivery import RedisThrottles
from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import BATCH, RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._redis import PrivateRedis
from tests._scripted_smtp import Conn, ScriptedSMTP

pytestmark = pytest.mark.redis


@pytest.mark.timeout(120)
def test_stderr_is_one_line_while_redis_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        redis_server = PrivateRedis().start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    first, rest = messages(1, "first"), messages(2 * BATCH, "rest")
    results: list[DeliveryResult] = []

    def script(cmd: str, conn: Conn) -> str | None:
        if cmd == ".":
            redis_server.stop()  # after the first lease; idempotent
        return None

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            throttles=RedisThrottles(redis_server.url),
            default_limits=SiteLimits(connections=2, tls="none"),
            retry=RetryPolicy(initial=0.05, max_delay=0.1, max_age=4.0),
        )
        await s.submit(first[0])
        while not results:  # the first delivery (and Redis's end)
            await asyncio.sleep(0.01)
        for m in rest:  # enough for a second worker, which finds no Redis
            await s.submit(m)
        await s.close()
        await s.throttles.close()

    try:
        # Slow enough that the second worker fails while the first is mid-batch.
        with ScriptedSMTP(script=script, end_of_data_delay=0.01) as server:
            asyncio.run(go(server.port))
    finally:
        redis_server.stop()
    assert len(results) == 1 + len(rest)
    assert len(server.bodies) == sum(r.status == "delivered" for r in results) > 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "waiting for it" in err[0] and "answers again" not in err[0]
