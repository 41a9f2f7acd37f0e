"""Three ``mailsflux worker`` processes, one Redis, a counting SMTP server: one worker
killed with SIGKILL mid-job, or Redis itself killed and restarted (AOF on).
Every recipient is delivered, duplicates stay within the dead worker's
in-flight messages, and the shared per-site rate holds (measured at the server)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import SMTPServer, TimedHandler
from tests._redis import AOFRedis
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 600
CONNECTIONS = 6
RATE = 150
BURST = 10
#: What one worker may have in open SMTP transactions: a batch (32) per connection.
IN_FLIGHT = CONNECTIONS * 32


class SlowHandler(TimedHandler):
    """A few milliseconds a message, so a kill lands mid-job."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.003)
        return await super().handle_DATA(server, session, envelope)


def _job(tmp_path: Path, server: SMTPServer, throttle: str, rows: list[list[str]]) -> Path:
    job = make_job(
        tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", connections=CONNECTIONS
    )
    with job.open("a") as fh:
        fh.write(
            f'throttle = "{throttle}"\nrate = {RATE}\nburst = {BURST}\n'
            "queue_initial = 0.5\nqueue_max = 1\nlease_ttl = 3\n"
        )
    return job


def _wait_for(handler: TimedHandler, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    while len(handler.received) < n and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a process ended early"
        time.sleep(0.005)


def _status(redis_url: str, prefix: str) -> dict[str, object]:
    got = run_cli("status", "job", "--json", "--redis", redis_url, "--prefix", prefix)
    assert got.returncode == 0, got.stderr
    doc: dict[str, object] = json.loads(got.stdout)
    return doc


def _wait_delivered(redis_url: str, prefix: str) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while True:
        status = _status(redis_url, prefix)
        if status["counts"] == {"delivered": ROWS} or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


#: The window the rate is measured over at the server, and how much later
#: than its grant a message may arrive (queued behind others on its session).
WINDOW = 2.0
LATE = 0.25


def _busiest_window(times: list[float]) -> int:
    """The most messages the server took in any WINDOW seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - WINDOW:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _check(handler: TimedHandler, rows: list[list[str]]) -> int:
    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert set(got) == {r[0] for r in rows}, f"lost: {ROWS - len(got)}"
    # A window holds at most the burst plus its time's worth of the rate (and
    # the messages granted just before it that arrive in it): three workers,
    # one limit. Without the shared throttle it would be three times that.
    assert _busiest_window(handler.times) <= BURST + RATE * (WINDOW + LATE)
    return sum(got.values()) - ROWS


def test_a_worker_killed_mid_job_loses_nobody_and_the_rate_holds(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = SlowHandler()
    rows = people(ROWS, domains=("example.com", "example.org", "example.net"))
    with SMTPServer(handler) as server:
        job = _job(tmp_path, server, redis_url, rows)
        with Workers(3, redis_url, prefix, tmp_path, "--lease", "2") as workers:
            cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q", "--json"]
            cmd += ["--redis", redis_url, "--prefix", prefix]
            sender = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _wait_for(handler, ROWS // 3, [sender, *workers.procs])
            victim = workers.procs[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            _, err = sender.communicate(timeout=180)
            status = _wait_delivered(redis_url, prefix)
            logs = "".join(workers.log(i) for i in range(3))
    assert sender.returncode in (0, 1), err.decode() + logs
    assert status["counts"] == {"delivered": ROWS}, status
    duplicates = _check(handler, rows)
    busiest = _busiest_window(handler.times)
    print(f"{duplicates} duplicates after the kill; {busiest} messages in the busiest {WINDOW} s")
    assert duplicates <= IN_FLIGHT


@pytest.fixture
def aof_redis() -> Iterator[AOFRedis]:
    r = AOFRedis()
    r.start()
    try:
        yield r
    finally:
        r.stop()


def test_redis_killed_and_restarted_mid_job_pauses_and_the_job_completes(
    tmp_path: Path, aof_redis: AOFRedis
) -> None:
    handler = SlowHandler()
    rows = people(ROWS, domains=("example.com", "example.org", "example.net"))
    url = aof_redis.url
    with SMTPServer(handler) as server:
        job = _job(tmp_path, server, url, rows)
        with Workers(3, url, "mf", tmp_path, "--lease", "2") as workers:
            cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q", "--json"]
            cmd += ["--redis", url]
            sender = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _wait_for(handler, ROWS // 3, [sender, *workers.procs])
            # Killed, not shut down: what it acknowledged is in the AOF (the
            # page cache), nothing more. Down for two seconds.
            aof_redis.kill()
            during = len(handler.received)
            time.sleep(2)
            paused = len(handler.received) - during
            aof_redis.start()
            _, err = sender.communicate(timeout=180)
            status = _wait_delivered(url, "mf")
            alive = [p.poll() is None for p in workers.procs]
            logs = "".join(workers.log(i) for i in range(3))
    assert sender.returncode in (0, 1), err.decode() + logs
    assert all(alive), logs
    assert "sending paused" in logs and "resumed" in logs
    assert status["counts"] == {"delivered": ROWS}, status
    duplicates = _check(handler, rows)
    print(f"{duplicates} duplicates; {paused} messages arrived while Redis was down")
    # Only SMTP transactions already open when Redis went away may finish then.
    assert paused <= 3 * IN_FLIGHT
    assert duplicates <= IN_FLIGHT
    assert os.path.exists(aof_redis.dir)
