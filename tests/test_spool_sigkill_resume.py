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
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import Received, RecordingHandler, SMTPServer
from tests._scripted_smtp import ScriptedSMTP

ROWS = 300
CONNECTIONS = 2
#: Messages a process may have in open transactions: a batch (32) per connection.
IN_FLIGHT = CONNECTIONS * 32


class SlowHandler(RecordingHandler):
    """Takes a few milliseconds a message, so a kill lands mid-job."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.004)
        return await super().handle_DATA(server, session, envelope)


class _Pipelined:
    """A server that offers PIPELINING (the session's compiled exchange runs
    against it), slow at the final dot like SlowHandler; ``received`` as
    RecordingHandler's: each message whose final dot it read."""

    def __init__(self) -> None:
        self.server = ScriptedSMTP(end_of_data_delay=0.004)

    def __enter__(self) -> _Pipelined:
        self.server.__enter__()
        self.url = f"smtp+plain://127.0.0.1:{self.server.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def handler(self) -> _Pipelined:
        return self

    @property
    def received(self) -> list[Received]:
        return [
            Received("", [message_from_bytes(b)["To"].rpartition("<")[2].rstrip(">")], b)
            for b in list(self.server.bodies)
        ]


@pytest.mark.parametrize(
    ("seed", "pipelined"), [(s, False) for s in range(20)] + [(s, True) for s in range(8)]
)
def test_sigkill_then_resume_delivers_everyone_with_duplicates_in_the_bound(
    tmp_path: Path, seed: int, pipelined: bool
) -> None:
    rng = random.Random(seed)
    rows = people(ROWS, domains=("example.com", "example.org", "example.net"))
    with _Pipelined() if pipelined else SMTPServer(SlowHandler()) as server:
        handler = server.handler
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
