"""Per-site and per-job rates: a job never delivers faster than the lower limit allows.

Arrival times are taken at the server; the check is one-sided (never faster
than limit plus burst), so a slow machine cannot make it fail.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux.jobs import Prepared, send
from tests._jobs import make_job, people
from tests._mail import SMTPServer, TimedHandler


@pytest.mark.parametrize(
    ("limits", "rate", "burst"),
    [
        ("rate = 40\nburst = 4\n", 40.0, 4),  # the site's rate
        ("rate = 1000\nburst = 4\njob_rate = 25\n", 25.0, 4),  # the job's, lower, wins
    ],
)
def test_never_faster_than_the_lower_limit(
    tmp_path: Path, limits: str, rate: float, burst: int
) -> None:
    n = 40
    handler = TimedHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, people(n, domains=("example.com",)), connections=2)
        text = job.read_text().replace(
            "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{smtp.port}"
        )
        job.write_text(text + limits)
        prepared = Prepared.load(job)
        summary = asyncio.run(send(prepared, on_problem=lambda p: None))
        prepared.close()
    assert summary.sent == n
    times = sorted(handler.times)
    # In every window, at most burst + rate * window messages (GCRA), with
    # 250 ms of slack: a client delayed after a grant (a loaded machine) sends
    # late and bunched. A sender at twice the limit still fails this.
    for i, t0 in enumerate(times):
        for j in range(i + 1, len(times)):
            window = times[j] - t0
            assert j - i + 1 <= burst + rate * (window + 0.25) + 1, (i, j, window)
