"""The throttle's Redis goes away: the job waits with backoff, says so once, and ends.

Nothing is sent without a grant, so what waits defers (and is finally
reported deferred) by the usual rules. Before, every failure restarted the
worker at once (157 "worker failed" lines in 5 s) and close() never returned.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult
from tests._jobs import make_job, people
from tests._redis import PrivateRedis, free_port
from tests._scripted_smtp import Conn, ScriptedSMTP

pytestmark = pytest.mark.redis


# The timeout guards against the old endless loop; nothing here is timed.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("when", ["killed-mid-job", "never-there"])
def test_a_redis_outage_defers_and_the_job_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], when: str
) -> None:
    n = 8
    try:
        redis_server = PrivateRedis().start() if when == "killed-mid-job" else None
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    url = redis_server.url if redis_server else f"redis://127.0.0.1:{free_port()}/0"

    def script(cmd: str, conn: Conn) -> str | None:
        if cmd == "." and redis_server is not None:
            redis_server.stop()  # after the first delivery's grant; idempotent
        return None

    results: list[DeliveryResult] = []
    try:
        with ScriptedSMTP(script=script) as server:
            job = make_job(tmp_path, people(n), connections=1, attempts=2)
            text = job.read_text().replace(
                "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{server.port}"
            )
            job.write_text(text + f'rate = 100\nburst = 2\nthrottle = "{url}"\n')
            prepared = Prepared.load(job)
            summary = asyncio.run(
                send(prepared, on_problem=lambda p: None, on_result=results.append)
            )
            prepared.close()
    finally:
        if redis_server is not None:
            redis_server.stop()
    assert sorted(r.recipient for r in results) == sorted(r[0] for r in people(n))
    delivered = [r for r in results if r.status == "delivered"]
    waiting = [r for r in results if r.status != "delivered"]
    assert len(server.bodies) == len(delivered) == summary.sent
    assert len(delivered) == (2 if redis_server else 0)  # the first grant's batch
    assert {r.status for r in waiting} == {"deferred"}
    assert all("throttle backend" in r.reply and r.attempts == 2 for r in waiting)
    err = capsys.readouterr().err.splitlines()
    assert 1 <= len(err) <= 3, err
    assert not any("worker failed" in line for line in err)
