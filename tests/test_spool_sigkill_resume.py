"""``mailsflux send`` killed with SIGKILL at a random moment, then run again:
every recipient gets the message, and only messages in open SMTP
transactions at the kill (the in-flight bound) may arrive twice."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer

ROWS = 300
CONNECTIONS = 2
#: Messages a process may have in open transactions: a batch (32) per connection.
IN_FLIGHT = CONNECTIONS * 32


class SlowHandler(RecordingHandler):
    """Takes a few milliseconds a message, so a kill lands mid-job."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.004)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("seed", range(20))
def test_sigkill_then_resume_delivers_everyone_with_duplicates_in_the_bound(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    handler = SlowHandler()
    rows = people(ROWS, domains=("example.com", "example.org", "example.net"))
    with SMTPServer(handler) as server:
        job = make_job(
            tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", connections=CONNECTIONS
        )
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if seed % 5 == 0:
            # Before the first message: while Python starts, the job loads.
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            # Once the server has taken a random number of messages, a moment
            # later: mid-batch, between batches, or while a result commits.
            target = rng.randint(1, ROWS - 1)
            deadline = time.monotonic() + 60
            while len(handler.received) < target and time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                time.sleep(0.0005)
            time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        before = sum(len(m.rcpt_tos) for m in handler.received)

        resumed = run_cli("send", str(job), "-q")
        assert resumed.returncode == 0, resumed.stderr
        # A message delivered twice is counted once by the resumed run's spool.
        status = json.loads(run_cli("status", "job", "--json").stdout)

    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert set(got) == {r[0] for r in rows}, f"lost: {ROWS - len(got)} (seed {seed})"
    duplicates = sum(got.values()) - ROWS
    print(f"seed {seed}: {before} before the kill, {duplicates} duplicates")
    assert duplicates <= IN_FLIGHT, (seed, before, duplicates)
    assert status["counts"] == {"delivered": ROWS}
    if proc.returncode == -signal.SIGKILL and 0 < before < ROWS:
        # Killed mid-job: the resumed run sent only what had no state.
        assert "rows already settled" in resumed.stderr or before == 0
