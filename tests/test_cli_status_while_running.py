"""``mailsflux status`` from another terminal while a job runs, and after."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP

ROWS = 120


def test_status_reads_a_running_job_and_then_its_outcome(tmp_path: Path) -> None:
    with ScriptedSMTP(end_of_data_delay=0.03) as srv:
        job = make_job(tmp_path, people(ROWS), relay=f"smtp+plain://127.0.0.1:{srv.port}")
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = None
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            got = run_cli("status", "job", "--json")
            if got.returncode == 0:
                doc = json.loads(got.stdout)
                if doc["state"] == "running" and doc["counts"].get("delivered", 0) > 0:
                    seen = doc
                    break
            time.sleep(0.1)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert seen is not None, "status never saw the job running"
    assert seen["rows"] == ROWS and 0 < seen["counts"]["delivered"] < ROWS
    assert seen["rate"] > 0
    after = json.loads(run_cli("status", "job", "--json").stdout)
    assert after["state"] == "finished" and after["counts"] == {"delivered": ROWS}
    assert after["eta_seconds"] is None
    text = run_cli("status")
    assert text.returncode == 0 and f"{ROWS} delivered" in text.stdout
    listed = run_cli("queue", "list")
    assert "the queue is empty" in listed.stdout
