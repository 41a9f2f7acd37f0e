"""Retention sweeps the events files (JSON lines) by the events' rules, with the
clock moved (``retention run --days-ahead``): at 89 days nothing goes; at 91
the personal fields go, sealed or plain, and the counts stay; at 366 the lines
go. The server's own files (its privacy audit, its bounce quarantine) are swept
without being named."""

from __future__ import annotations

import json
from pathlib import Path

from mailsflux import sealedlines
from tests._cli import run_cli
from tests._events import read_events
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def _sweep(data: Path, days: float, *files: Path) -> dict[str, int]:
    args = [a for f in files for a in ("--events", str(f))]
    config = data.parent / "server.toml"
    r = run_cli("retention", "run", "--config", str(config), "--days-ahead", str(days),
                "--json", *args)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc: dict[str, int] = json.loads(r.stdout)
    return doc


def test_events_files_swept_at_each_boundary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "server.toml").write_text(
        'data_dir = "data"\n[bounces]\nfeedback_addresses = ["fbl@sender.example"]\n'
        'quarantine = "q"\n'
    )
    (tmp_path / "q").mkdir()
    kept = tmp_path / "q" / "20261129T000000-0123456789abcdef.eml.sealed"
    kept.write_bytes(b"a report that could not be parsed")
    rows = people(3)
    with SMTPServer(RecordingHandler()) as server:
        job = make_job(tmp_path, rows, relay=server.url)
        sealed = tmp_path / "events.jsonl"
        plain = tmp_path / "plain.jsonl"
        for f, extra in ((sealed, []), (plain, ["--events-plain"])):
            r = run_cli("send", str(job), "-q", "--restart", "--events", str(f), *extra)
            assert r.returncode == 0, r.stderr
    assert rows[0][0] in plain.read_text() and rows[0][0] not in sealed.read_text()
    r = run_cli("privacy", "export", rows[0][0], "--data-dir", str(data), "--out", "/dev/null")
    assert r.returncode == 0, r.stderr
    audit = data / "privacy-audit.jsonl"
    assert len(audit.read_text().splitlines()) == 1

    got = _sweep(data, 89, sealed, plain)
    assert got.get("events_file_anonymised", 0) == 0 and got.get("events_file_deleted", 0) == 0
    assert sorted(e["recipient"] for e in read_events(sealed)) == sorted(p[0] for p in rows)
    assert kept.exists()

    got = _sweep(data, 91, sealed, plain)
    assert got["events_file_anonymised"] == 6 and got.get("events_file_deleted", 0) == 0, got
    assert got["quarantine_deleted"] == 1 and not kept.exists()  # a report names people
    for f in (sealed, plain):
        lines = read_events(f)
        assert [e["type"] for e in lines] == ["delivered"] * 3  # still counted
        assert not any("recipient" in e or "reply" in e["details"] for e in lines)
        assert "@example" not in f.read_text().replace("@sender.example", "")
    assert len(audit.read_text().splitlines()) == 1  # an audit line is an event: a year

    got = _sweep(data, 366, sealed, plain)
    assert got["events_file_deleted"] == 7, got  # 3 + 3 events, the audit line
    assert sealed.read_text() == plain.read_text() == audit.read_text() == ""
    assert sealed.stat().st_mode & 0o777 == 0o600
    assert list(sealedlines.read(sealed, None)) == []
