"""A plain install runs every command: redis is installed, and loaded only when used.

The Quick start once failed with ``No module named 'redis'``: the send path
imported the Redis backend although redis was an optional extra.
"""

from __future__ import annotations

from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

from tests._jobs import make_job, people
from tests._procs import imported


def test_redis_is_a_plain_dependency() -> None:
    reqs = [Requirement(r) for r in requires("mailsflux") or []]
    assert any(r.name == "redis" and r.marker is None for r in reqs), reqs


def test_send_render_validate_never_import_redis(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(3))
    for args in (
        ["validate", str(job)],
        ["render", str(job), "--out", str(tmp_path / "out")],
        ["send", str(job), "--local-sink", "-q"],
    ):
        proc, mods = imported(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert "mailsflux.jobs.run" in mods, args  # the observation works
        assert not {m for m in mods if m == "redis" or m.startswith("redis.")}, args
