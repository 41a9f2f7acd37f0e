"""One events line cut short (a crash or a full disk mid-write) stops nothing:
``retention run`` keeps the line as it is, names its file and line once, and
still sweeps the file's other lines and every other store; a store that cannot
be swept at all (here an events "file" that is a folder) is named on stderr
(exit 1) and the others are swept anyway. Resealing and a person's erasure
read past the line too, and the next event appended starts a line of its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailsflux import sealedlines
from mailsflux.gateway.privacy import matcher
from mailsflux.spool import SpoolKeys
from tests._cli import run_cli

GOOD = (
    b'{"id":"evt_1","type":"bounced","time":1.0,"tenant":"","message_id":"m1@x",'
    b'"recipient":"a@b.example"}\n'
)
CUT = b'{"id":"evt_2","type":"bounced","time":2.0,"tenant":"","message_id":"m2@x","recipient":"c@d'


def test_retention_run_sweeps_past_a_cut_line_and_a_failing_store(tmp_path: Path) -> None:
    (tmp_path / "server.toml").write_text(
        'data_dir = "data"\n[bounces]\nfeedback_addresses = ["fbl@sender.example"]\n'
        'quarantine = "q"\nevents = "bounce-events.jsonl"\n'
    )
    events = tmp_path / "bounce-events.jsonl"
    events.write_bytes(GOOD + CUT)
    (tmp_path / "q").mkdir()
    report = tmp_path / "q" / "20200101T000000-0123456789abcdef.eml"
    report.write_bytes(b"a report naming someone")
    os.utime(report, (1.0, 1.0))
    broken = tmp_path / "not-a-file.jsonl"
    broken.mkdir()
    r = run_cli("retention", "run", "--config", str(tmp_path / "server.toml"),
                "--events", str(broken), "--json")  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    got = json.loads(r.stdout)
    assert got["quarantine_deleted"] == 1 and not report.exists()
    assert got["events_file_deleted"] == 1 and got["events_file_unreadable_lines"] == 1
    assert events.read_bytes() == CUT + b"\n"  # kept as it was, now ended
    assert r.stderr.count(f"{events}:2") == 1
    assert f"not swept: events file {broken}" in r.stderr


def test_reseal_and_erase_read_past_a_cut_line(tmp_path: Path) -> None:
    keys = SpoolKeys.load(tmp_path / "keys")
    path = tmp_path / "ev.jsonl"
    path.write_bytes(GOOD + CUT)
    assert sealedlines.reseal(path, keys) == 2
    assert path.read_bytes().endswith(CUT + b"\n")
    assert b"a@b.example" not in path.read_bytes()
    with sealedlines.open_append(path, keys) as w:
        w.write(GOOD.replace(b"evt_1", b"evt_3"))
    assert [e["id"] for e in sealedlines.read(path, keys)] == ["evt_1", "evt_3"]
    found = sealedlines.person(path, keys, matcher(_key("a@b.example")), erase=True)
    assert [e["id"] for e in found] == ["evt_1", "evt_3"]
    assert [e.get("recipient") for e in sealedlines.read(path, keys)] == [None, None]
    assert CUT in path.read_bytes()


def _key(address: str) -> str:
    from mailsflux.gateway.privacy import address_key

    return address_key(address, "ADDRESS")
