"""`keys rotate-store` also moves an API job's waiting rows and a `send --events`
file to the new key: every value then carries the new key id, and everything
opens back to what it was."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

from mailsflux import Message
from mailsflux.feedback import Ingestor
from mailsflux.feedback.ingest import read_sources
from mailsflux.gateway import Gateway, TenantLog
from mailsflux.gateway.gateway import ROWS_FILE
from mailsflux.gateway.sealed import read_rows, write_rows
from mailsflux.sealedlines import EVENTS_KEY_FILE
from mailsflux.spool import SpoolKeys
from mailsflux.tenants import Principal
from tests._bounces import DIR
from tests._cli import run_cli
from tests._events import read_events
from tests._gateway import delivery, server_toml, two_tenants
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer

ACME = Principal(tenant="acme", key_id="api_1", roles=frozenset({"send", "read"}))
ROWS = [json.dumps({"to": f"waiting{i}@x.test", "data": {"n": i}}).encode() for i in range(4)]


def _row_key_ids(path: Path) -> set[str]:
    """The key id of each sealed row (length, then 0x01 || kid || ...)."""
    raw, ids = path.read_bytes(), set()
    while raw:
        size = int.from_bytes(raw[:4], "big")
        ids.add(raw[5:9].hex())
        raw = raw[4 + size :]
    return ids


def _line_key_ids(path: Path) -> set[str]:
    ids = set()
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        for v in (doc["recipient"], doc["details"].get("reply", "")):
            if v:
                assert v.startswith("mfs2:")
                kid, data = v.split(":")[1:]
                sealed = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
                assert sealed[1:5].hex() == kid  # the id shown is the one that sealed it
                ids.add(kid)
    return ids


def test_rotate_store_reseals_api_job_rows_and_events_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def once() -> None:
            async with Gateway(
                two_tenants(tmp_path), data_dir=data, delivery=delivery(server.url)
            ) as gw:
                await gw.accept(
                    ACME, Message(sender="news@acme.example", to="a@x.test", subject="s", text="t")
                )

        asyncio.run(once())
        # A job whose rows still wait (the server stopped before handing them on).
        acme = data / "tenants" / "acme"
        log = TenantLog.of(acme, "acme")
        log.add_job("job_waiting", "waiting", 0, b"{}", "running")
        (acme / "jobs" / "job_waiting").mkdir(parents=True)
        rows = acme / "jobs" / "job_waiting" / ROWS_FILE
        write_rows(rows, "job_waiting", ROWS, log.keys)
        log.close()
        # A CLI job's events file, sealed with the job-file spool's keys.
        job = make_job(tmp_path, people(3), relay=server.url)
        events = tmp_path / "events.jsonl"
        sent = run_cli("send", str(job), "-q", "--events", str(events))
        assert sent.returncode == 0, sent.stderr

    # The server's bounce listener's events and quarantine, under DATA_DIR/events.keys.
    config = server_toml(tmp_path, data)
    config.write_text(
        config.read_text().replace(
            "[[tenants]]",
            '[bounces]\nfeedback_addresses = ["fbl@acme.example"]\nevents = "bounces.jsonl"\n'
            'quarantine = "q"\n[[tenants]]',
            1,
        )
    )
    server_keys = SpoolKeys.load(data / EVENTS_KEY_FILE)
    bounces = tmp_path / "bounces.jsonl"
    with Ingestor(quarantine=tmp_path / "q", events=bounces, keys=server_keys) as ingest:
        ingest.ingest(b"Subject: hi\n\nnot a report from ann@x.test\n")
        ingest.ingest((DIR / "exim-failed.eml").read_bytes())
    old_server = server_keys.ids

    spool = Path(os.environ["MAILSFLUX_SPOOL"])
    old_tenant = SpoolKeys.load(acme / "spool" / "keys", create=False).ids
    old_spool = SpoolKeys.load(spool / "keys", create=False).ids
    assert _row_key_ids(rows) == {old_tenant[0]} and _line_key_ids(events) == {old_spool[0]}

    got = run_cli("keys", "rotate-store", "--config", str(config),
                  "--spool", str(spool), "--events", str(events))  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert "4 API job rows sealed again" in got.stdout and "3 events lines" in got.stdout

    tenant_ring = SpoolKeys.load(acme / "spool" / "keys", create=False)
    spool_ring = SpoolKeys.load(spool / "keys", create=False)
    assert tenant_ring.ids[1:] == old_tenant and spool_ring.ids[1:] == old_spool
    assert _row_key_ids(rows) == {tenant_ring.current_id}
    assert list(read_rows(rows, "job_waiting", tenant_ring)) == ROWS
    assert _line_key_ids(events) == {spool_ring.current_id}
    assert sorted(e["recipient"] for e in read_events(events)) == sorted(p[0] for p in people(3))
    assert events.stat().st_mode & 0o777 == 0o600

    assert "1 quarantined reports sealed again" in got.stdout, got.stdout
    server_ring = SpoolKeys.load(data / EVENTS_KEY_FILE, create=False)
    assert server_ring.ids[1:] == old_server
    assert _line_key_ids(bounces) == {server_ring.current_id}
    assert read_events(bounces, data / EVENTS_KEY_FILE)[0]["type"] == "bounced"
    (report,) = (tmp_path / "q").iterdir()
    assert report.read_bytes()[1:5].hex() == server_ring.current_id
    ((_, again),) = read_sources([report], server_ring)
    assert b"not a report from ann@x.test" in again
