"""A bad `send --relay` is a usage error naming --relay, like a bad relay in the job file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:2601", "expected smtp://"),
        ("smtp://127.0.0.1:99999", "invalid port"),
        ("smtp://user:s3cret@127.0.0.1:99999", "invalid port"),
    ],
)
def test_bad_relay_option(tmp_path: Path, url: str, why: str) -> None:
    job = make_job(tmp_path, people(2))
    proc = run_cli("send", str(job), "--relay", url)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "--relay" in last and why in last, proc.stderr
    assert "s3cret" not in proc.stderr  # a password never shows in an error


def test_bad_relay_in_the_job_file_hides_the_password(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2), relay="smtp://user:s3cret@127.0.0.1:99999")
    proc = run_cli("send", str(job))
    assert proc.returncode == 2
    assert f"{job}:" in proc.stderr and "invalid port" in proc.stderr
    assert "s3cret" not in proc.stderr
