"""The spool and the throttles on a real Redis Cluster (three private masters):
``send --redis redis+cluster://...`` and two workers complete a job, with the
job's shared rate limit in the same cluster, and every key of the job lives
in one hash slot (on one node)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._cluster import PrivateCluster
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 150
PREFIX = "mfc"


def test_a_job_completes_on_a_redis_cluster_with_its_keys_on_one_slot(tmp_path: Path) -> None:
    handler = RecordingHandler()
    rows = people(ROWS)
    with PrivateCluster() as cluster, SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        with job.open("a") as fh:  # the job's throttles share the cluster too
            fh.write(f'throttle = "{cluster.url}"\nrate = 2000\n')
        with Workers(2, cluster.url, PREFIX, tmp_path) as workers:
            sent = run_cli("send", str(job), "--redis", cluster.url, "--prefix", PREFIX, "--json")
            status = run_cli("status", "--json", "--redis", cluster.url, "--prefix", PREFIX)
        logs = workers.log(0) + workers.log(1)
        keys: dict[int, list[bytes]] = {}
        for port in cluster.ports:
            found = cluster.node(port).keys(f"{PREFIX}:{{*")
            if found:
                keys[port] = found
        slots = {
            cluster.node(cluster.ports[0]).cluster("keyslot", k) for ks in keys.values() for k in ks
        }

    assert sent.returncode == 0, sent.stderr + logs
    summary = json.loads(sent.stdout)
    assert summary["sent"] == ROWS and not summary["interrupted"]
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter({r[0]: 1 for r in rows})
    assert status.returncode == 0, status.stderr
    (doc,) = json.loads(status.stdout)
    assert doc["counts"] == {"delivered": ROWS} and doc["state"] == "finished"
    # Every key of the job carries its hash tag: one slot, so one node.
    names = {k.decode().rsplit(":", 1)[1] for ks in keys.values() for k in ks}
    assert {"info", "st", "rec", "n", "dom", "q"} <= names, names
    assert len(keys) == 1 and len(slots) == 1, (keys, slots)
