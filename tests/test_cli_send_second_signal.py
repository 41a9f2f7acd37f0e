"""A second SIGTERM stops at once: a receiver that never answers the end of
data holds the first stop for its whole grace (here 10 minutes); the second
ends the job now, and its spool stays readable and resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP


def test_a_second_signal_does_not_wait_for_the_grace(tmp_path: Path) -> None:
    with ScriptedSMTP(end_of_data_delay=3600) as srv:
        job = make_job(tmp_path, people(40), relay=f"smtp+plain://127.0.0.1:{srv.port}")
        job.write_text(job.read_text() + "stop_grace = 600\n")
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not srv.bodies and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # waiting for the batch in flight, as asked
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)  # not 600 s
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "interrupted after" in out
    status = json.loads(run_cli("status", "job", "--json").stdout)
    assert status["state"] == "interrupted"
    assert status["counts"].get("delivered", 0) == 0  # nothing answered: nothing recorded
