"""`mailsflux validate` reports every problem with its file:line or field."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people


def test_example_job_validates_with_its_three_bad_rows(welcome_job: Path) -> None:
    proc = run_cli("validate", str(welcome_job))
    assert proc.returncode == 1
    csv_path = welcome_job.parent / "recipients.csv"
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert sorted(ln.split(": error:")[0] for ln in errors) == sorted(
        f"{csv_path}:{n}" for n in (43, 404, 779)
    )
    # The key and the tracking config: warnings, not errors.
    assert proc.stderr.count("not yet created") == 2
    assert proc.stdout.strip() == "3 error(s), 2 warning(s)"  # only the verdict


def test_many_problems_at_once(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        [*people(3), ["bad@", "B", "B", "Team"]],
        subject="Hi {{first_nme}}",
        html="<p>{{first_name}}</p>\n<p>{{coupon}}</p>\n",
    )
    (job.parent / "dkim").mkdir()
    (job.parent / "dkim" / "t1.pem").write_text("not a key\n")
    proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    out = proc.stderr
    assert f"{job}: message.subject: error: variable 'first_nme'" in out
    assert f"{job.parent / 'body.html'}:2: error: variable 'coupon'" in out
    assert f"{job.parent / 'dkim' / 't1.pem'}" in out
    assert f"{job.parent / 'recipients.csv'}:5: error:" in out


def test_template_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2), html="<p>ok</p>\n<p>{{#open}} never closed</p>\n")
    proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    assert f"{job.parent / 'body.html'}:2:" in proc.stderr


def test_broken_job_file_names_file_and_line(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    job.write_text(job.read_text().replace('selector = "t1"', 'selector = "t1'))
    for cmd in ("validate", "send", "render"):
        args = [cmd, str(job)] + (["--out", str(tmp_path / "o")] if cmd == "render" else [])
        proc = run_cli(*args)
        assert proc.returncode in (1, 2)
        assert f"{job}:" in proc.stdout + proc.stderr
        assert "invalid TOML" in proc.stdout + proc.stderr


def test_missing_files_are_named(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    (job.parent / "body.txt").unlink()
    proc = run_cli("send", str(job), "--local-sink")
    assert proc.returncode == 2
    assert f"{job.parent / 'body.txt'}: text template not found" in proc.stderr
    proc = run_cli("send", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2 and "job file not found" in proc.stderr


def test_the_same_row_problem_is_shown_twenty_times_then_counted(tmp_path: Path) -> None:
    job = make_job(tmp_path, [r[:3] for r in people(30)])  # every row lacks its plan
    proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    csv_path = job.parent / "recipients.csv"
    rows = [ln for ln in proc.stderr.splitlines() if "missing variable 'plan'" in ln]
    assert len(rows) == 20
    assert f"and 10 more rows with the same problem as {csv_path}:2" in proc.stderr


def test_missing_column_with_empty_variables_is_a_warning(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        people(3),
        html="<p>{{first_name}}</p>\n<p>{{coupon}}</p>\n",
        extra_message='missing_variables = "empty"',
    )
    proc = run_cli("validate", str(job))
    assert proc.returncode == 0, proc.stdout
    assert f"{job.parent / 'body.html'}:2: warning: variable 'coupon'" in proc.stderr


def test_json_lists_every_problem_on_stdout(welcome_job: Path) -> None:
    proc = run_cli("validate", str(welcome_job), "--json")
    assert proc.returncode == 1
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False
    csv_path = welcome_job.parent / "recipients.csv"
    errors = [p for p in doc["problems"] if p["severity"] == "error"]
    assert sorted(p["where"] for p in errors) == sorted(f"{csv_path}:{n}" for n in (43, 404, 779))
    assert "has no @" in next(p["what"] for p in errors if p["where"].endswith(":43"))
    assert doc["errors"] == 3 and doc["warnings"] == len(doc["problems"]) - 3
    assert all(set(p) == {"where", "what", "severity"} for p in doc["problems"])


def test_json_of_a_good_job(tmp_path: Path) -> None:
    proc = run_cli("validate", str(make_job(tmp_path, people(2))), "--json")
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["valid"] is True
