"""``keys rotate-store --redis`` seals the spool in Redis again, workers running.

``send --redis`` puts a job's rows (and a bad row, recorded skipped at once)
into a private Redis; rotate-store leaves every record and every batch under
the new key id. A worker then sends every row; one it deferred waits with
its body in Redis. A second rotation, the worker still running with the
ring it read before, reseals that body too; made due again, the worker meets
the newer key id, reads its key file again and sends it. Every row arrives
once and nothing is set aside."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import msgspec
import pytest
import redis

from mailsflux.spool import SpoolKeys
from mailsflux.spool.redis_spool import RedisSpool
from tests._cli import run_ok
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import enqueued, private_server, wait_for
from tests._workers import Workers

pytestmark = pytest.mark.redis

PREFIX = "mfrot"
LATER = "later.person@example.net"


def _kids(client: redis.Redis, spool: RedisSpool, job: str) -> Counter[str]:
    """The key id of every sealed value of ``job``."""
    kid = spool.keys.key_id
    got: Counter[str] = Counter()
    for _, blob in client.hscan_iter(spool.key(job, "rec")):
        got[kid(msgspec.msgpack.decode(blob)[5])] += 1
    for _, blob in client.hscan_iter(spool.key(job, "body")):
        got[kid(blob)] += 1
    for _, fields in client.xrange(spool.key(job, "q")):
        got[kid(fields[b"rows"])] += 1
    return got


def test_rotate_store_reseals_redis_while_a_worker_sends(tmp_path: Path) -> None:
    with private_server() as url:
        _scenario(tmp_path, url)


def _scenario(tmp_path: Path, url: str) -> None:
    keys = tmp_path / "keys"
    opts = ("--redis", url, "--prefix", PREFIX, "--key-file", str(keys))
    rows = people(150)
    rows[5][0] = "not an address"
    rows[70][0] = LATER
    ready = threading.Event()  # LATER is deferred until the second rotation
    handler = RecordingHandler(
        lambda a, n: "451 4.7.1 later" if a == LATER and not ready.is_set() else None
    )
    client = redis.Redis.from_url(url)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        with enqueued(job, url, PREFIX, "--key-file", str(keys)) as send:
            first = SpoolKeys.load(keys, create=False).current_id
            out = run_ok("keys", "rotate-store", *opts)
            assert "1 records" in out and "3 batches sealed again" in out, out
            new = SpoolKeys.load(keys, create=False).current_id
            assert new != first
            with RedisSpool(url, prefix=PREFIX, key_file=keys) as spool:
                (info,) = spool.jobs()
                assert _kids(client, spool, info.id) == Counter({new: 4})
                with Workers(1, url, PREFIX, tmp_path, "--key-file", str(keys)) as w:
                    wait_for("the deferred row", lambda: spool.counts(info.id).get("deferred"))
                    wait_for("everyone else", lambda: len(handler.received) >= 148)
                    out = run_ok("keys", "rotate-store", *opts)
                    assert "1 deferred bodies" in out, out
                    newer = SpoolKeys.load(keys, create=False).current_id
                    assert set(_kids(client, spool, info.id)) == {newer}
                    ready.set()
                    assert spool.make_due(job=info.id) == 1
                    wait_for(
                        "the deferred row sent",
                        lambda: spool.counts(info.id) == {"delivered": 149, "skipped": 1},
                    )
                    out, err = send.communicate(timeout=120)
                    log = w.log(0)
    assert send.returncode in (0, 1), err  # 1: a row was bad, or one was still deferred
    summary = json.loads(out.strip().splitlines()[-1])
    # send ends once every batch is settled (a deferred row comes back when due).
    assert summary["sent"] + summary["deferred"] == 149 and summary["skipped"] == 1, summary
    assert summary["quarantined"] == 0
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert len(arrived) == 149 and set(arrived.values()) == {1}, arrived
    assert "set aside" not in log, log
    client.close()
