"""A send that can deliver nothing out of a non-empty file is a failure, said once."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people


def test_template_variable_missing_from_columns_is_a_job_error(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(40), html="<p>{{first_name}}</p>\n<p>{{coupon}}</p>\n")
    proc = run_cli("send", str(job), "--local-sink", "--json")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{job.parent / 'body.html'}:2:" in lines[0]
    assert "'coupon'" in lines[0] and "recipients.csv" in lines[0]
    assert proc.stdout == ""  # refused before any row was read: no summary


def test_subject_variable_missing_from_columns_is_a_job_error(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(3), subject="Hi {{first_nme}}")
    proc = run_cli("send", str(job), "--local-sink")
    assert proc.returncode == 2
    assert f"{job}: " in proc.stderr and "message.subject" in proc.stderr
    assert "'first_nme'" in proc.stderr


def test_nothing_sent_exits_1_with_one_line_and_capped_row_messages(tmp_path: Path) -> None:
    # Every row is short: its plan is absent, which the strict templates refuse.
    rows = [r[:3] for r in people(45)]
    job = make_job(tmp_path, rows)
    proc = run_cli("send", str(job), "--local-sink", "--json")
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["sent"] == 0 and summary["skipped"] == 45
    lines = proc.stderr.strip().splitlines()
    per_row = [ln for ln in lines if "missing variable 'plan'" in ln and "row skipped" in ln]
    assert len(per_row) == 20, proc.stderr
    first = job.parent / "recipients.csv"
    more = [ln for ln in lines if f"and 25 more rows with the same problem as {first}:2" in ln]
    assert len(more) == 1, proc.stderr
    why = [ln for ln in lines if "nothing sent" in ln]
    assert len(why) == 1 and "45 rows" in why[0], proc.stderr
    # The first run also announces the DKIM key it made; nothing else is said.
    said = [ln for ln in lines if "recipients.csv" in ln or "nothing sent" in ln]
    assert len(said) == 22, proc.stderr


def test_some_sent_stays_exit_0(tmp_path: Path) -> None:
    rows = [*people(5), ["bad@", "B", "B", "Team"]]
    job = make_job(tmp_path, rows)
    proc = run_cli("send", str(job), "--local-sink", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "nothing sent" not in proc.stderr
