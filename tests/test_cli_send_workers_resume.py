"""``send --workers 2`` killed mid-job resumes with workers too: each worker
skips its rows an earlier run settled, and the summary counts them once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP

ROWS = 160


def test_workers_resume_a_killed_job(tmp_path: Path) -> None:
    rows = people(ROWS)
    with ScriptedSMTP(end_of_data_delay=0.02) as srv:
        job = make_job(tmp_path, rows, relay=f"smtp+plain://127.0.0.1:{srv.port}", connections=2)
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q", "--workers", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(srv.bodies) < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # The whole process group, as a crash or the OOM killer would.
        subprocess.run(["pkill", "-KILL", "-f", f"mailsflux send {job}"], check=False)
        proc.wait(30)
        status = json.loads(run_cli("status", "job", "--json").stdout)
        settled = status["counts"].get("delivered", 0)
        again = run_cli("send", str(job), "-q", "--workers", "2", "--json")
        assert again.returncode == 0, again.stderr
        doc = json.loads(again.stdout.splitlines()[-1])
        bodies = list(srv.bodies)
    assert doc["resumed"] == settled and doc["sent"] == ROWS - settled
    to = Counter(b.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0] for b in bodies)
    assert len(to) == ROWS
    # Per worker process: at most its connections x 32 in flight at the kill.
    assert sum(to.values()) - ROWS <= 2 * 2 * 32
