"""Two worker processes, one Redis throttle: the site's limit holds across both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import SMTPServer, TimedHandler

pytestmark = pytest.mark.redis


def test_two_processes_share_one_site_limit(tmp_path: Path, redis_url: str) -> None:
    n, rate, burst = 60, 30.0, 3
    handler = TimedHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, people(n, domains=("example.com",)), connections=4)
        text = job.read_text().replace(
            "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{smtp.port}"
        )
        job.write_text(
            text + f'rate = {rate}\nburst = {burst}\nthrottle = "{redis_url}"\nworkers = 2\n'
        )
        proc = run_cli("send", str(job), "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["sent"] == n and doc["total"] == n
    times = sorted(handler.times)
    assert len(times) == n
    # Both processes together: never more than burst + rate * window in any
    # window (250 ms of slack for sends bunched on a loaded machine). Each process alone would
    # be allowed the full rate, so twice the rate would show here.
    for i, t0 in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - t0 + 0.25) + 1, (i, j)
