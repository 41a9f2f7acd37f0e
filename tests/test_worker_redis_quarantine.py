"""Records that do not authenticate are set aside, not fatal and not retried forever.

A job is enqueued with the hosts' key file; then two batches with altered
bytes (three rows and seven) and an altered deferred message join it. A real
``mailsflux worker --until-idle`` sends the good rows to a counting SMTP
server and exits by itself; the three bad records are in the job's
quarantine, listed by ``status --redis``, the batches' ten rows count
``quarantined`` and the job is ``incomplete``, not finished; the deferred
one's row is recorded failed. ``send --redis`` then exits 1 naming the
batches. (A key a host lacks is not damage: test_worker_redis_key_lag.py.)"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.redis_batches import batch_ctx
from mailsflux.jobs.worker import enqueue
from mailsflux.spool import Record
from mailsflux.spool.redis_spool import RedisSpool
from tests._cli import run_cli
from tests._jobs import make_job, messages, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 20
STRAY = 500  # the deferred message's row, beyond the file's


def _tamper(redis_url: str, prefix: str, job_path: Path) -> str:
    """Enqueue the job, then add the three records nobody can open; the job's id."""
    with RedisSpool(redis_url, prefix=prefix) as spool:
        info, _ = enqueue(spool, load_job(job_path), on_problem=lambda p: None)
        q = spool.key(info.id, "q")
        good = spool.keys.seal(b"\x90", batch_ctx(info.id, 900))
        altered = good[:-1] + bytes([good[-1] ^ 1])
        spool.client.xadd(q, {"first": 900, "n": 3, "rows": altered})
        good = spool.keys.seal(b"\x90", batch_ctx(info.id, 950))
        flipped = good[:20] + bytes([good[20] ^ 1]) + good[21:]
        spool.client.xadd(q, {"first": 950, "n": 7, "rows": flipped})
        msg = messages(1)[0]
        spool.store(
            info.id,
            [
                Record(
                    row=STRAY,
                    state="deferred",
                    recipient=msg.rcpt_to,
                    message_id=msg.message_id,
                    domain="example.com",
                    attempts=1,
                    next_at=time.time() - 1,
                    message=msg,
                )
            ],
        )
        body = spool.key(info.id, "body")
        sealed = spool.client.hget(body, STRAY)
        spool.client.hset(body, STRAY, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    return info.id


def test_unreadable_batches_and_deferred_messages_are_set_aside(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    rows = people(ROWS)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        jid = _tamper(redis_url, prefix, job)
        with Workers(1, redis_url, prefix, tmp_path, "--until-idle") as workers:
            code = workers.procs[0].wait(120)
        log = workers.log(0)
    assert code == 0, log
    assert log.count("set aside") == 2, log  # the two batches, each said once
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter({r[0]: 1 for r in rows})  # the good rows all went out

    got = run_cli("status", jid, "--json", "--redis", redis_url, "--prefix", prefix)
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["counts"] == {"delivered": ROWS, "failed": 1, "quarantined": 10}
    assert doc["state"] == "incomplete"
    quarantine = {q["what"].partition(":")[0]: q for q in doc["quarantine"] if q["what"]}
    whats = sorted(q["what"] for q in doc["quarantine"])
    assert len(whats) == 3 and whats[-1] == f"row:{STRAY}", whats
    assert {q["first_row"]: q["rows"] for q in doc["quarantine"]} == {900: 3, 950: 7, STRAY: 0}
    assert "row" in quarantine and "does not authenticate" in quarantine["row"]["why"]
    text = run_cli("status", jid, "--redis", redis_url, "--prefix", prefix)
    assert text.stdout.count("set aside:") == 3, text.stdout
    # Nothing in the quarantine or the status is an address in the clear.
    assert "example.com" not in json.dumps(doc["quarantine"])

    # Following the job again: never reported as a success, the batches named.
    got = run_cli("send", str(job), "--json", "--redis", redis_url, "--prefix", prefix)
    assert got.returncode == 1, got.stderr
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert summary["quarantined"] == 10 and summary["total"] == ROWS + 1 + 10, summary
    assert got.stderr.count("rows from row") == 2, got.stderr
