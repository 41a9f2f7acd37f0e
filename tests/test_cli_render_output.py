"""`render --out`: one clear line for a bad folder, bounded names, no link followed,
nothing overwritten without --force, and one unwritable file never stops the rest."""

from __future__ import annotations

import os
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people


def _one_line_error(proc_stderr: str, *needles: str) -> None:
    assert "Traceback" not in proc_stderr, proc_stderr
    lines = [ln for ln in proc_stderr.splitlines() if "error" in ln]
    assert len(lines) == 1, proc_stderr
    for n in needles:
        assert n in lines[0], (n, proc_stderr)


def test_out_is_a_file_or_cannot_be_made(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    existing = tmp_path / "existing.file"
    existing.write_text("keep me\n")
    proc = run_cli("render", str(job), "--out", str(existing))
    assert proc.returncode == 2
    _one_line_error(proc.stderr, str(existing), "not a folder")
    assert existing.read_text() == "keep me\n"
    proc = run_cli("render", str(job), "--out", "/proc/nope")
    assert proc.returncode == 2
    _one_line_error(proc.stderr, "/proc/nope", "cannot create")


def test_negative_limit_is_a_usage_error(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    proc = run_cli("render", str(job), "--out", str(tmp_path / "o"), "--limit", "-1")
    assert proc.returncode == 2
    assert "--limit" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_longest_address_gets_a_bounded_name_and_every_row_is_written(tmp_path: Path) -> None:
    long_addr = "l" * 64 + "@" + ".".join(["a" * 63, "b" * 63, "c" * 57, "com"])
    assert len(long_addr) == 254  # the longest a path allows (RFC 5321 4.5.3.1.3)
    rows = people(11)
    rows[3][0] = long_addr
    job = make_job(tmp_path, rows)
    out = tmp_path / "out"
    proc = run_cli("render", str(job), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 11
    assert max(len(n.encode()) for n in names) <= 120
    assert any(n.startswith("0000005-" + "l" * 20) for n in names)


def test_existing_files_and_planted_links_are_never_overwritten(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(3))
    out = tmp_path / "out"
    first = run_cli("render", str(job), "--out", str(out))
    assert first.returncode == 0, first.stderr
    names = sorted(p.name for p in out.iterdir())
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / names[1]).unlink()
    (out / names[1]).symlink_to(victim)  # a link planted where a message will go
    before = (out / names[0]).read_bytes()

    again = run_cli("render", str(job), "--out", str(out))
    assert again.returncode == 2
    _one_line_error(again.stderr, str(out / names[0]), "--force")
    assert (out / names[0]).read_bytes() == before

    forced = run_cli("render", str(job), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert victim.read_text() == "precious\n"
    assert not (out / names[1]).is_symlink()
    assert b"DKIM-Signature" in (out / names[1]).read_bytes()
    # Without --force a link is refused, never followed, even a dangling one.
    (out / names[0]).unlink()
    (out / names[0]).symlink_to(tmp_path / "would-be-created")
    refused = run_cli("render", str(job), "--out", str(out), "--limit", "1")
    assert refused.returncode == 2
    _one_line_error(refused.stderr, str(out / names[0]))
    assert not (tmp_path / "would-be-created").exists()


def test_an_unwritable_file_is_reported_with_its_row_and_the_rest_go_on(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(5))
    out = tmp_path / "out"
    out.mkdir()
    # A folder where row 3's file goes: --force cannot rename a file over it.
    (out / "0000003-user1_at_example.org.eml").mkdir()
    proc = run_cli("render", str(job), "--out", str(out), "--force")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{job.parent / 'recipients.csv'}:3: error: u***@example.org: cannot write" in (
        proc.stderr
    )
    assert "wrote 4 messages" in proc.stdout
    assert len([p for p in out.iterdir() if p.is_file()]) == 4
    assert os.access(out, os.W_OK)
