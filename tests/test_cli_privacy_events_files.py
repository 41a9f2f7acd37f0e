"""The privacy rights reach the events files: `privacy export --events` finds a
person's lines, sealed or plain; `correct` rewrites the address (sealed);
`erase` drops the personal fields and keeps the line."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._events import read_events
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def test_export_correct_erase_in_events_files(tmp_path: Path) -> None:
    rows = people(3)
    ann = rows[0][0]
    sealed, plain = tmp_path / "events.jsonl", tmp_path / "plain.jsonl"
    with SMTPServer(RecordingHandler()) as server:
        job = make_job(tmp_path, rows, relay=server.url)
        for f, extra in ((sealed, []), (plain, ["--events-plain"])):
            r = run_cli("send", str(job), "-q", "--restart", "--events", str(f), *extra)
            assert r.returncode == 0, r.stderr
    files = ["--data-dir", str(tmp_path / "data"), "--events", str(sealed), "--events", str(plain)]

    r = run_cli("privacy", "export", ann.upper(), *files)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)["events_files"]
    assert [e["recipient"] for e in doc[str(sealed)]] == [ann]  # opened for the person
    assert [e["recipient"] for e in doc[str(plain)]] == [ann]

    r = run_cli("privacy", "correct", ann, "--to", "ann.new@example.net", *files)
    assert r.returncode == 0, r.stderr
    for f in (sealed, plain):
        assert "ann.new@example.net" not in f.read_text()  # written back sealed
        assert "ann.new@example.net" in [e.get("recipient") for e in read_events(f)]

    r = run_cli("privacy", "erase", "ann.new@example.net", *files)
    assert r.returncode == 0, r.stderr
    assert "events_file.events.jsonl: 1" in r.stdout
    for f in (sealed, plain):
        lines = read_events(f)
        assert len(lines) == 3 and sum("recipient" not in e for e in lines) == 1
        assert {e.get("recipient") for e in lines} >= {rows[1][0], rows[2][0]}
