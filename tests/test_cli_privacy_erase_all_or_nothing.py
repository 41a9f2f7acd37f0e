"""``privacy erase`` reads every store before it changes any: an events file
its key ring cannot open stops the request before the spool is touched, with
one line naming the file and the key ring, and the audit log still records the
request and why it stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mailsflux import sealedlines
from mailsflux.spool import SpoolKeys
from tests._cli import run_cli
from tests._jobs import make_job, people


def test_erase_stops_before_changing_anything(tmp_path: Path) -> None:
    rows = people(2)
    ann = rows[0][0]
    r = run_cli("send", str(make_job(tmp_path, rows)), "--local-sink", "-q")
    assert r.returncode == 0, r.stderr
    other = SpoolKeys.load(tmp_path / "other-keys")  # not the spool's key ring
    events = tmp_path / "events.jsonl"
    with sealedlines.open_append(events, other) as w:
        w.write(json.dumps({"id": "evt_1", "type": "delivered", "time": time.time(),
                            "message_id": "m1@x", "recipient": ann}).encode() + b"\n")  # fmt: skip
    data = ["--data-dir", str(tmp_path / "data")]

    r = run_cli("privacy", "erase", ann, *data, "--events", str(events))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    said = r.stderr.strip().splitlines()
    r = run_cli("privacy", "export", ann, *data)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["spool"]) == 1  # nothing was erased
    assert len(said) == 1 and f"{events}:1" in said[0] and "keys" in said[0], said
    assert ann not in said[0]
    log = (tmp_path / "data" / "privacy-audit.jsonl").read_text()
    audit = [json.loads(x) for x in log.splitlines()]
    assert [a["action"] for a in audit] == ["erase", "export"]
    assert audit[0]["counts"] == {} and "events.jsonl" in audit[0]["failed"]
    assert "failed" not in audit[1]
    assert ann not in log
