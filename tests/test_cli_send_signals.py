"""SIGINT and SIGTERM stop `send` within moments and print what was done so far.

Against a slow SMTP server (each message takes a while to be accepted), a
signal arrives mid-job: the summary is printed with counts that match the
event log, and the exit status is 128 + the signal. With --workers the
parent passes the signal on to its workers and sums their partial counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailsflux._fork import START_ENV
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP

ROWS = 200


def _delivered(events: Path) -> int:
    if not events.exists():
        return 0
    return sum(json.loads(x)["type"] == "delivered" for x in events.read_text().splitlines())


def _send_then_signal(
    tmp_path: Path, sig: signal.Signals, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], int]:
    events = tmp_path / "events.jsonl"
    with ScriptedSMTP(end_of_data_delay=0.05) as srv:
        job = make_job(tmp_path, people(ROWS), relay=f"smtp+plain://127.0.0.1:{srv.port}")
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "--events", str(events)]
        proc = subprocess.Popen(
            [*cmd, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 120
        while _delivered(events) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done, _delivered(events)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_one_process_prints_partial_counts(tmp_path: Path, sig: signal.Signals) -> None:
    proc, delivered = _send_then_signal(tmp_path, sig)
    assert proc.returncode == 128 + sig, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "interrupted after" in proc.stdout
    assert f"sent      {delivered}\n" in proc.stdout, (delivered, proc.stdout)
    assert 3 <= delivered < ROWS
    assert f"not done  {ROWS - delivered} " in proc.stdout
    assert f"stopped by {sig.name}" in proc.stderr


@pytest.mark.parametrize("start", ["fork", "spawn"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_workers_get_the_signal_and_counts_are_summed(
    tmp_path: Path, sig: signal.Signals, start: str
) -> None:
    proc, delivered = _send_then_signal(
        tmp_path, sig, "--workers", "2", "--json", env={START_ENV: start}
    )
    assert proc.returncode == 128 + sig, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["interrupted"] is True
    assert doc["sent"] == delivered and 3 <= delivered < ROWS
    assert sum(doc["per_domain"].values()) == delivered
