"""examples/letters end to end into the print-house drop folder, as a user runs it.

`letters send` renders the example's good rows, skips the bad address with
one line naming file, line and field, drops PDFs plus the manifest, and
writes letter_submitted events; the print house's status.csv then becomes
printed / in_transit / delivered events through `letters status`; a second
send sends nothing twice; the letter store holds no address in the clear.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests._cli import run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "letters"


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_example_job_into_the_file_drop(tmp_path: Path) -> None:
    job_dir = tmp_path / "letters"
    shutil.copytree(EXAMPLE, job_dir, ignore=shutil.ignore_patterns("print-drop", "letters-*"))
    job = job_dir / "job.toml"
    events = tmp_path / "events.jsonl"

    r = run_cli("letters", "send", str(job), "--events", str(events), "--workers", "2")
    assert r.returncode == 1, r.stderr  # a row was skipped
    problems = r.stderr.strip().splitlines()
    assert problems == [
        f"{job_dir / 'recipients.csv'}:6: error: field postal_code: invalid for DE; row skipped"
    ]
    assert "4 letters submitted, 1 skipped" in r.stdout

    drop = job_dir / "print-drop"
    with (drop / "manifest.csv").open(newline="") as f:
        manifest = list(csv.DictReader(f))
    assert [m["country_code"] for m in manifest] == ["DE", "US", "FR", "CH"]
    assert all((drop / m["file"]).read_bytes().startswith(b"%PDF-") for m in manifest)
    # No email, no merge data in what the print house gets, only the address.
    assert "plan" not in manifest[0] and "Pro" not in (drop / "manifest.csv").read_text()

    sent = _events(events)
    assert [e["type"] for e in sent] == ["letter_submitted"] * 4
    assert [e["recipient"] for e in sent] == ["C-1001", "C-1002", "C-1003", "C-1004"]
    assert {e["message_id"] for e in sent} == {m["letter_id"] for m in manifest}

    # The print house reports back.
    first, second = manifest[0]["letter_id"], manifest[1]["letter_id"]
    (drop / "status.csv").write_text(
        "letter_id,status,time,tracking_number\n"
        f"{first},printed,1000,\n{first},in_transit,2000,RR123456789DE\n"
        f"{first},delivered,3000,RR123456789DE\n{second},printed,1500,\n"
    )
    r = run_cli("letters", "status", str(job), "--events", str(events), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["letters"] == {"delivered": 1, "printed": 1, "submitted": 2}
    new = _events(events)[4:]
    assert [(e["type"], e["message_id"]) for e in new] == [
        ("printed", first), ("in_transit", first), ("delivered", first), ("printed", second),
    ]  # fmt: skip
    assert new[2]["details"] == {"carrier": "file", "tracking_number": "RR123456789DE"}
    # Asked again: nothing new happened, no event repeated.
    run_cli("letters", "status", str(job), "--events", str(events))
    assert len(_events(events)) == 8

    # A second send hands nothing over twice.
    r = run_cli("letters", "send", str(job), "--events", str(events))
    assert "0 letters submitted" in r.stdout and "4 sent before" in r.stdout
    assert len(list(drop.glob("*.pdf"))) == 4

    # An uncollected letter can be withdrawn; a collected one cannot.
    (drop / f"{manifest[3]['letter_id']}.pdf").unlink()  # the print house took it
    r = run_cli("letters", "cancel", str(job), "C-1003")
    assert r.returncode == 0 and "cancelled" in r.stdout
    r = run_cli("letters", "cancel", str(job), "C-1004")
    assert r.returncode == 1 and "too late" in r.stdout

    # The letter store: addresses sealed, never in the clear.
    for f in (job_dir / "letters-state").iterdir():
        data = f.read_bytes()
        for clear in (b"Mustermann", b"Hauptstra", b"Amphitheatre", b"10115", b"Curie"):
            assert clear not in data, (f, clear)
