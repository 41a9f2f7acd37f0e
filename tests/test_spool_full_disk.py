"""The spool's disk fills up mid-job (a small tmpfs): one clear error line,
nothing recorded as delivered that the server did not take, and once there
is room again the job resumes and finishes."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux.spool import SQLiteSpool
from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer

ROWS = 3000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    got = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if got.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {got.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_spool_disk_stops_the_job_cleanly_and_it_resumes(
    tmp_path: Path, small_disk: Path
) -> None:
    handler = RecordingHandler()
    rows = people(ROWS)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        job.write_text(job.read_text() + f'\n[spool]\ndir = "{small_disk / "spool"}"\n')
        full = run_cli("send", str(job), "-q")
        assert full.returncode == 2, (full.stdout, full.stderr)
        assert "Traceback" not in full.stderr
        (line,) = [x for x in full.stderr.splitlines() if "error" in x]
        assert line.startswith("mailsflux: error: the spool could not be written")
        assert "full" in line and "resumes" in line
        taken = Counter(r for m in handler.received for r in m.rcpt_tos)
        assert 0 < len(taken) < ROWS

        with SQLiteSpool(small_disk / "spool") as spool:
            (info,) = spool.jobs()
            delivered = spool.records(info.id, states=["delivered"], limit=ROWS)
        # Recorded delivered only if the server took it.
        assert {r.recipient for r in delivered} <= set(taken)

        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        resumed = run_cli("send", str(job), "-q")
        assert resumed.returncode == 0, resumed.stderr
        assert f"resumed: {len(delivered)} rows settled" in resumed.stdout

    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert set(got) == {r[0] for r in rows}
    # Sent twice: only what was taken and not yet recorded when the disk filled.
    assert sum(got.values()) - ROWS == len(taken) - len(delivered)
