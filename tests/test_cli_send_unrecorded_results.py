"""Results that cannot be recorded make `send` exit 1 with one line.

The event log is /dev/full (every write fails: a full disk). Delivery goes
on. Before, the scheduler printed that "the result callback failed" and
the job exited 0, every message delivered, as if all had been recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_unrecorded_results_fail_the_run(tmp_path: Path) -> None:
    n = 6
    with ScriptedSMTP() as server:
        job = make_job(tmp_path, people(n), relay=f"smtp+plain://127.0.0.1:{server.port}")
        proc = run_cli("send", str(job), "--events", "/dev/full", "--workers", "1", "-q")
    assert len(server.bodies) == n  # every message delivered: only the records failed
    assert proc.returncode == 1, proc.stderr
    # (The DKIM key generation notice aside.)
    err = [line for line in proc.stderr.splitlines() if line.startswith("mailsflux:")]
    assert len(err) == 1, proc.stderr
    assert f"{n} results could not be recorded" in err[0] and "events file" in err[0]
    assert "Traceback" not in proc.stderr
