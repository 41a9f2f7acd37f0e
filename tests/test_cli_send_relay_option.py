"""A bad `send --relay` is a usage error naming --relay, like a bad relay in the job file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people


def assert_hidden(proc: subprocess.CompletedProcess[str], job: Path) -> None:
    """Neither password ("s3cret", "s3/cret") shows, wherever the job lives.

    Whole passwords: the output may hold a new key's DNS record, whose
    random base64 can contain any two characters."""
    shown = (proc.stdout + proc.stderr).replace(str(job.parent), "JOB")
    assert "s3cret" not in shown and "s3/cret" not in shown, shown


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:2601", "expected smtp://"),
        ("smtp://127.0.0.1:99999", "invalid port"),
        ("smtp://user:s3cret@127.0.0.1:99999", "invalid port"),
        # Passwords urlsplit does not see as such, and a URL it cannot split.
        ("smtp:user:s3cret@127.0.0.1", "expected smtp://"),
        ("smtp:/user:s3cret@127.0.0.1", "expected smtp://"),
        ("smtp://user:s3cret", "invalid port"),
        ("smtp://user:s3/cret@127.0.0.1", "invalid port"),
        ("smtp://user:s3cret@[::1", "Invalid IPv6 URL"),
        ("smtp://user:s3cret@[::1]:x", "invalid port"),
    ],
)
def test_bad_relay_option(tmp_path: Path, url: str, why: str) -> None:
    job = make_job(tmp_path, people(2))
    proc = run_cli("send", str(job), "--relay", url)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "--relay" in last and why in last, proc.stderr
    assert_hidden(proc, job)  # a password never shows in an error


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("smtp://user:s3cret@127.0.0.1:99999", "invalid port"),
        ("smtp:user:s3cret@127.0.0.1", "expected smtp://"),
        ("smtp://user:s3cret@[::1", "Invalid IPv6 URL"),
    ],
)
def test_bad_relay_in_the_job_file_hides_the_password(tmp_path: Path, url: str, why: str) -> None:
    job = make_job(tmp_path, people(2), relay=url)
    for command in ("send", "validate"):
        proc = run_cli(command, str(job))
        assert proc.returncode in (1, 2) if command == "validate" else proc.returncode == 2
        assert f"{job}:" in proc.stderr and why in proc.stderr, proc.stderr
        assert_hidden(proc, job)
        assert "Traceback" not in proc.stderr
