"""Retention moves with the clock: each rule holds at its boundary, in every store."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from mailsflux import Message
from mailsflux.gateway import Gateway, RetentionSpec, sweep_spool
from mailsflux.spool import SQLiteSpool
from mailsflux.tenants import Principal
from tests._cli import run_cli
from tests._gateway import delivery, two_tenants
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer

DAY = 86400.0
ACME = Principal(tenant="acme", key_id="k", roles=frozenset({"send", "read"}))


def test_each_retention_rule_at_its_boundary(tmp_path: Path) -> None:
    spec = RetentionSpec()  # 90 days for addresses, 365 for events, 24 h for answers
    handler = RecordingHandler()

    async def go(url: str) -> None:
        gw = Gateway(two_tenants(tmp_path), data_dir=tmp_path / "data", delivery=delivery(url))
        async with gw:
            log = gw.log(ACME)
            assert log.answer("key-1", "digest") is None
            log.remember("key-1", 202, b"{}")
            for i in range(3):
                await gw.accept(ACME, Message(sender="a@acme.example", to=f"r{i}@example.net",
                                              subject="s", text="t"))  # fmt: skip
            for _ in range(200):
                if sum(e.type == "delivered" for e in gw.events(ACME, 0, 100)) == 3:
                    break
                await asyncio.sleep(0.05)
            t0 = time.time()

            def spool_rows() -> int:
                with SQLiteSpool(tmp_path / "data" / "tenants" / "acme" / "spool") as s:
                    return sum(len(s.records(j.id, limit=100)) for j in s.jobs())

            assert spool_rows() == 3
            # A day before each boundary: nothing goes (the answer is past its 24 h).
            early = await gw.sweep(spec, now=t0 + 89 * DAY)
            assert early.pop("answers_deleted") == 1
            assert not any(early.values()), early
            assert all(e.recipient for e in gw.events(ACME, 0, 100))
            # Past 90 days: addresses go from the spool and the events; events stay.
            later = await gw.sweep(spec, now=t0 + 91 * DAY)
            assert later["spool_deleted"] == 3 and later["events_anonymised"] == 6
            events = gw.events(ACME, 0, 100)
            assert len(events) == 6 and all(
                e.recipient == "" and e.details.reply == "" for e in events
            )
            assert {e.details.code for e in events if e.type == "delivered"} == {250}
            assert spool_rows() == 0
            again = await gw.sweep(spec, now=t0 + 92 * DAY)
            assert not any(again.values())
            # Past 365 days the events go too.
            last = await gw.sweep(spec, now=t0 + 366 * DAY)
            assert last["events_deleted"] == 6 and gw.events(ACME, 0, 100) == []

    with SMTPServer(handler) as smtp:
        asyncio.run(go(smtp.url))


def test_a_job_files_rows_keep_their_state_but_lose_the_address(tmp_path: Path) -> None:
    rows = people(5)
    handler = RecordingHandler()
    spool_dir = Path(os.environ["MAILSFLUX_SPOOL"])
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url)
        assert run_cli("send", str(job), "-q").returncode == 0
        before = json.loads(run_cli("status", "job", "--json").stdout)["counts"]
        now = time.time()
        early = sweep_spool(spool_dir, RetentionSpec(), now + 89 * DAY)
        assert early == {"spool_anonymised": 0, "spool_deleted": 0}
        assert sweep_spool(spool_dir, RetentionSpec(), now + 91 * DAY)["spool_anonymised"] == 5
        after = json.loads(run_cli("status", "job", "--json").stdout)["counts"]
        assert after == before == {"delivered": 5}
        with SQLiteSpool(spool_dir) as spool:
            (info,) = spool.jobs()
            recs = spool.records(info.id, limit=10)
            assert [r.recipient for r in recs] == [""] * 5 and all(r.message_id for r in recs)
        # Sending the job again passes every row over: nothing is sent twice.
        run_cli("send", str(job), "-q")
    assert len(handler.received) == 5
    # The CLI sweeps the same way (a later sweep finds nothing more to do).
    out = run_cli("retention", "run", "--days-ahead", "400", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"spool_anonymised": 0, "spool_deleted": 0}
