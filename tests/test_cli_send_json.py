"""`send --json`: the summary is one JSON document on stdout, each problem a JSON line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people


@pytest.mark.parametrize("workers", ["1", "2"])
def test_problems_are_json_lines(tmp_path: Path, workers: str) -> None:
    rows = people(6)
    rows[2][0] = "no-at.example.com"
    job = make_job(tmp_path, rows)
    proc = run_cli("send", str(job), "--local-sink", "--json", "--workers", workers)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["sent"] == 5 and summary["skipped"] == 1
    docs = [json.loads(ln) for ln in proc.stderr.splitlines() if ln.startswith("{")]
    assert docs == [
        {
            "where": f"{job.parent / 'recipients.csv'}:4",
            "what": "field email: address 'no-at.example.com' has no @; row skipped",
            "severity": "error",
        }
    ]
