"""``mailsflux letters erase JOB REF`` deletes one letter's postal address now.

Letter records hold no email address (a reference, a status, the sealed
postal address), so a person's erasure names the letter. The example job is
sent into the print-house drop folder; erasing C-1002 leaves its row (and
status) but no address; the others keep theirs; asked again it says none is
held; an unknown reference is one line on stderr and exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

from mailsflux.letters import load_letter_job, open_store
from tests._cli import run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "letters"


def test_letters_erase_deletes_one_address(tmp_path: Path) -> None:
    job_dir = tmp_path / "letters"
    shutil.copytree(EXAMPLE, job_dir, ignore=shutil.ignore_patterns("print-drop", "letters-*"))
    job = job_dir / "job.toml"
    r = run_cli("letters", "send", str(job), "--workers", "1")
    assert "4 letters submitted" in r.stdout, r.stderr

    r = run_cli("letters", "erase", str(job), "C-1002")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "C-1002: postal address deleted"

    loaded = load_letter_job(job)
    store = open_store(loaded)
    try:
        rows = {row.ref: row for row in store.rows(loaded.name)}
        assert not rows["C-1002"].has_address and rows["C-1002"].status == "submitted"
        assert store.address(rows["C-1002"].letter_id) is None
        kept = store.address(rows["C-1001"].letter_id)
        assert kept is not None and kept.name == "Erika Mustermann"
        assert all(rows[r].has_address for r in ("C-1001", "C-1003", "C-1004"))
    finally:
        store.close()

    r = run_cli("letters", "erase", str(job), "C-1002")
    assert r.returncode == 0 and r.stdout.strip() == "C-1002: no postal address held"
    r = run_cli("letters", "erase", str(job), "C-9999")
    assert r.returncode == 1 and r.stderr.strip().endswith("no letter 'C-9999'"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
