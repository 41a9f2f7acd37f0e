"""`mailsflux bounces parse`: one JSON object per file, in order; a table; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests._bounces import DIR, expected, samples
from tests._cli import run_cli


def test_json_one_object_per_file_in_order() -> None:
    files = [str(p) for p in reversed(samples())]
    # Whole addresses only when asked for (the default masks them).
    r = run_cli("--show-addresses", "bounces", "parse", "--json", *files)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["file"] for d in docs] == files
    want = expected()
    for d in docs:
        w = want[Path(d["file"]).name]
        assert d["kind"] == w["kind"]
        assert [
            [x["recipient"], x["status"], x["code"], x["reason"], x["hard"]]
            for x in d["recipients"]
        ] == w["recipients"]
        assert all(
            set(x) == {"recipient", "status", "code", "reason", "hard"} for x in d["recipients"]
        )


def test_table() -> None:
    r = run_cli(
        "bounces", "parse", str(DIR / "postfix-two-recipients.eml"), str(DIR / "not-a-report.eml")
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["FILE", "KIND", "RECIPIENT", "STATUS", "CODE", "REASON", "HARD"]
    assert lines[1].split()[1:] == [
        "bounce",
        "d***@example.com",  # masked by default
        "5.1.1",
        "550",
        "bad_mailbox",
        "hard",
    ]
    assert lines[2].split()[1:] == ["bounce", "e***@example.com", "5.7.1", "554", "policy", "soft"]
    assert lines[3].split()[1:] == ["not-a-report", "-", "-", "-", "-", "-"]


def test_missing_file_is_one_line_and_nothing_printed(tmp_path: Path) -> None:
    r = run_cli(
        "bounces", "parse", "--json", str(DIR / "exim-failed.eml"), str(tmp_path / "nope.eml")
    )
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"mailsflux: error: {tmp_path / 'nope.eml'}: no such file"
    ]


def test_a_directory_that_is_no_maildir(tmp_path: Path) -> None:
    r = run_cli("bounces", "parse", str(tmp_path))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert (
        r.stderr.strip() == f"mailsflux: error: {tmp_path}: not a maildir (no cur/, new/ and tmp/)"
    )
