"""What `send` writes and decides besides mail: the event log, worker counts."""

from __future__ import annotations

import json
from pathlib import Path

from mailsflux.dkim.keyfiles import ensure_key
from tests._cli import run_cli
from tests._events import read_events
from tests._jobs import make_job, people


def test_event_log_is_private_and_complete(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(6))
    events = tmp_path / "events.jsonl"
    proc = run_cli("send", str(job), "--local-sink", "-q", "--events", str(events))
    assert proc.returncode == 0, proc.stderr
    assert events.stat().st_mode & 0o777 == 0o600  # it names recipients
    raw = events.read_text()
    assert not any(r[0] in raw for r in people(6))  # sealed: no address in clear
    lines = read_events(events)
    assert sorted(e["recipient"] for e in lines) == sorted(r[0] for r in people(6))
    assert {e["type"] for e in lines} == {"delivered"}
    assert all("Subject" not in json.dumps(e) for e in lines)  # no message content


def test_more_workers_than_connections_are_capped(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(8), connections=2)
    proc = run_cli("send", str(job), "--local-sink", "--workers", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "using 2" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["sent"] == 8


def test_an_existing_key_is_kept_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    key = tmp_path / "dkim" / "s.example.pem"
    assert ensure_key(key, domain="example.com", selector="s", bits=1024)
    first = key.read_bytes()
    assert not ensure_key(key, domain="example.com", selector="s", bits=1024)
    assert key.read_bytes() == first
    assert sorted(p.name for p in key.parent.iterdir()) == ["s.example.pem", "s.example.txt"]
