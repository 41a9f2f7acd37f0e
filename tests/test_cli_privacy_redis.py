"""A person's rights reach the spool in Redis.

``send --redis`` puts a job's rows into a private Redis with no worker
running, so they wait in sealed batches. ``privacy export`` finds the
person's row there (addresses are sealed: every batch is opened);
``privacy erase`` records it failed (``erased``) and seals its batch
again without it. A worker then sends everyone else, never the erased
person; a row it deferred (its body waiting in Redis) is found by the next
export, and erasing that person deletes the body and gives the row up. No
address is left in Redis in clear, and the job's counts end with every row
settled. With ``--config``, a server's ``[redis]`` is searched the same way."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import redis

from mailsflux.spool.redis_spool import RedisSpool
from tests._cli import run_ok
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import enqueued, private_server, wait_for
from tests._workers import Workers

pytestmark = pytest.mark.redis

PREFIX = "mfpriv"
GONE = "erin.gone@Example.NET"
LATER = "later.person@example.net"


def test_export_and_erase_reach_rows_waiting_in_redis(tmp_path: Path) -> None:
    with private_server() as url:
        _scenario(tmp_path, url)


def _scenario(tmp_path: Path, url: str) -> None:
    keys = tmp_path / "keys"
    opts = ("--redis", url, "--prefix", PREFIX, "--key-file", str(keys))
    rows = people(150)
    rows[140][0] = GONE  # asked for with the domain spelt otherwise
    rows[70][0] = LATER
    handler = RecordingHandler(lambda a, n: "451 4.7.1 later" if a == LATER else None)
    client = redis.Redis.from_url(url)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        with enqueued(job, url, PREFIX, "--key-file", str(keys)) as send:
            doc = json.loads(run_ok("privacy", "export", "erin.gone@example.net", *opts))
            found = doc["redis"][PREFIX]
            assert [r["row"] for r in found] == [142], found  # the file's line
            assert [r["state"] for r in found] == ["pending"]
            assert [r["fields"]["first_name"] for r in found] == ["Name140"]

            out = run_ok("privacy", "erase", GONE, *opts)
            assert f"redis.{PREFIX}: 1" in out, out

            with Workers(1, url, PREFIX, tmp_path, "--key-file", str(keys)):
                with RedisSpool(url, prefix=PREFIX, key_file=keys) as spool:
                    (info,) = spool.jobs()
                    wait_for("the deferred row", lambda: spool.counts(info.id).get("deferred"))
                    wait_for("everyone else", lambda: len(handler.received) >= 148)
                    assert client.hlen(spool.key(info.id, "body")) == 1
                    doc = json.loads(run_ok("privacy", "export", LATER, *opts))
                    assert [r["state"] for r in doc["redis"][PREFIX]] == ["deferred"]
                    run_ok("privacy", "erase", LATER, *opts)
                    assert client.hlen(spool.key(info.id, "body")) == 0
                    assert spool.counts(info.id) == {"delivered": 148, "failed": 2}
                    out, _ = send.communicate(timeout=120)
    summary = json.loads(out.strip().splitlines()[-1])
    # send ends once every batch is settled (a deferred row comes back when due).
    assert summary["sent"] == 148 and summary["failed"] + summary["deferred"] == 2, summary
    arrived = Counter(r.lower() for m in handler.received for r in m.rcpt_tos)
    assert arrived[GONE.lower()] == 0 and arrived[LATER] == 0
    assert len(arrived) == 148 and set(arrived.values()) == {1}
    with RedisSpool(url, prefix=PREFIX, key_file=keys) as spool:
        records = spool.records(info.id, states=["failed"])
    assert {r.row: (r.category, r.recipient) for r in records} == {
        72: ("erased", ""),
        142: ("erased", ""),
    }
    # Nothing of theirs in clear anywhere in Redis.
    for key in client.scan_iter(f"{PREFIX}:*"):
        kind = client.type(key)
        dump = client.dump(key) or b""
        assert b"gone" not in dump.lower() and b"later.person" not in dump, (key, kind)
    client.close()
    # A server's [redis] is searched with --config, as serve uses it.
    config = tmp_path / "server.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[redis]\n'
        f'url = "{url}"\nprefix = "{PREFIX}"\nkey_file = "{keys}"\n'
    )
    doc = json.loads(run_ok("privacy", "export", "user0@example.com", "--config", str(config)))
    assert [(r["row"], r["state"]) for r in doc["redis"][PREFIX]] == [(2, "delivered")]
    # Correct: the record names the new address, the old one is found no more.
    run_ok("privacy", "correct", "user1@example.org", "--to", "user1@new.example", *opts)
    doc = json.loads(run_ok("privacy", "export", "user1@new.example", *opts))
    assert [(r["row"], r["recipient"]) for r in doc["redis"][PREFIX]] == [(3, "user1@new.example")]
    doc = json.loads(run_ok("privacy", "export", "user1@example.org", *opts))
    assert doc["redis"][PREFIX] == []
