"""`send --workers N` forks its workers from the parent that read the job:
no worker starts Python again (its command line is its parent's, where a
spawned one's is `send JOB --shard I/N`), every row is still sent once, and
a worker that dies is reported as such, the other one not left running."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from mailsflux._fork import START_ENV
from tests._jobs import make_job, people
from tests._procs import send_watched
from tests._scripted_smtp import ScriptedSMTP


def test_workers_are_forked_from_the_parent(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(6))
    # Each message waits at the final dot, so the workers live to be looked at.
    with ScriptedSMTP(end_of_data_delay=0.3) as server:
        url = f"smtp+plain://127.0.0.1:{server.port}"
        r, workers, own = send_watched(job, "--workers", "2", "--json", "--relay", url)
    assert r.returncode == 0, r.stderr
    assert len(workers) == 2, workers
    assert all(cmd == own for cmd in workers.values()), (own, workers)
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["sent"] == 6 and doc["per_domain"] == {"example.com": 3, "example.org": 3}
    assert len(server.bodies) == 6


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie no one reaped (not running, anyway)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_worker_that_dies_is_reported(tmp_path: Path, start: str) -> None:
    job = make_job(tmp_path, people(40))
    killed: list[int] = []

    def kill_one(seen: dict[int, bytes]) -> None:
        if not killed and len(seen) == 2:
            killed.append(min(seen))
            os.kill(killed[0], signal.SIGKILL)

    with ScriptedSMTP(end_of_data_delay=0.2) as server:
        url = f"smtp+plain://127.0.0.1:{server.port}"
        r, workers, _ = send_watched(
            job, "--workers", "2", "--relay", url, env={START_ENV: start}, watch=kill_one
        )
    assert killed, r.stderr
    assert r.returncode == 2, r.stderr
    assert re.search(r"^mailsflux: error: worker [01]/2 failed \(exit -9\)$", r.stderr, re.M)
    assert "Traceback" not in r.stderr
    assert len(server.bodies) < 40
    assert all(_gone(pid) for pid in workers), workers
