"""SIGTERM mid-job: the batches in flight finish and are recorded, the job
exits 143, and running it again sends exactly the rest: no one twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP

ROWS = 150


def test_sigterm_finishes_what_is_in_flight_and_the_resume_sends_only_the_rest(
    tmp_path: Path,
) -> None:
    rows = people(ROWS)
    with ScriptedSMTP(end_of_data_delay=0.03) as srv:
        job = make_job(tmp_path, rows, relay=f"smtp+plain://127.0.0.1:{srv.port}")
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while len(srv.bodies) < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "Traceback" not in err and "interrupted after" in out
        first = len(srv.bodies)
        assert 20 <= first < ROWS

        again = run_cli("send", str(job), "-q")
        assert again.returncode == 0, again.stderr
        assert f"resumed: {first} rows settled" in again.stdout
        bodies = list(srv.bodies)

    to = Counter(b.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0] for b in bodies)
    assert len(to) == ROWS and max(to.values()) == 1, to.most_common(3)
