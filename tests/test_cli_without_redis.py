"""A plain install runs every command: redis is installed, and loaded only when used.

The Quick start once failed with ``No module named 'redis'``: the send path
imported the Redis backend although redis was an optional extra.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

from tests._jobs import make_job, people


def test_redis_is_a_plain_dependency() -> None:
    reqs = [Requirement(r) for r in requires("mailsflux") or []]
    assert any(r.name == "redis" and r.marker is None for r in reqs), reqs


def _imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    # -X importtime lists every module the process imports, on stderr.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mailsflux", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    mods = {
        ln.rsplit("|", 1)[1].strip()
        for ln in proc.stderr.splitlines()
        if ln.startswith("import time:") and ln.count("|") == 2
    }
    return proc, mods


def test_send_render_validate_never_import_redis(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(3))
    for args in (
        ["validate", str(job)],
        ["render", str(job), "--out", str(tmp_path / "out")],
        ["send", str(job), "--local-sink", "-q"],
    ):
        proc, mods = _imported(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "mailsflux.jobs.run" in mods, args  # the observation works
        assert not {m for m in mods if m == "redis" or m.startswith("redis.")}, args
