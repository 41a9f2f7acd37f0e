"""``keys rotate-store`` seals the bounce quarantine's reports again, and each
keeps its age: retention deletes a report ``recipient_days`` after it came,
however often the keys were rotated meanwhile."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mailsflux.feedback.ingest import Ingestor
from mailsflux.sealedlines import EVENTS_KEY_FILE
from mailsflux.spool import SpoolKeys
from tests._cli import run_cli


def test_rotation_keeps_a_quarantined_reports_age(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "server.toml"
    config.write_text(
        'data_dir = "data"\n[bounces]\nfeedback_addresses = ["fbl@sender.example"]\n'
        'quarantine = "q"\nevents = "bounces.jsonl"\n'
    )
    data.mkdir()
    keys = SpoolKeys.load(data / EVENTS_KEY_FILE)
    with Ingestor(quarantine=tmp_path / "q", events=tmp_path / "bounces.jsonl", keys=keys) as i:
        i.ingest(b"Subject: hi\n\nnot a report from ann@x.test\n")
    (report,) = (tmp_path / "q").iterdir()
    came = time.time() - 100 * 86400  # 100 days ago: past recipient_days (90)
    os.utime(report, (came, came))

    r = run_cli("keys", "rotate-store", "--config", str(config))
    assert r.returncode == 0, r.stderr
    assert "1 quarantined reports sealed again" in r.stdout, r.stdout
    assert abs(report.stat().st_mtime - came) < 1
    assert report.stat().st_mode & 0o777 == 0o600

    r = run_cli("retention", "run", "--config", str(config), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["quarantine_deleted"] == 1 and not report.exists()
