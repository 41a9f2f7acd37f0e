"""``redis+sentinel://``: a private master and a private Sentinel watching it;
``send --redis redis+sentinel://HOST:PORT/MASTER`` and a worker find the
master through the Sentinel and complete a job."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._redis import PrivateRedis, free_port
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 40


def _sentinel(master_port: int, where: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("redis-server")
    assert exe is not None
    port = free_port()
    conf = where / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {where}\n"
        f"sentinel monitor mfmaster 127.0.0.1 {master_port} 1\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [exe, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            got = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(
                "mfmaster"
            )
            if got:
                return proc, port
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError("the private Sentinel did not come up")


def test_a_job_completes_through_a_sentinel_url(tmp_path: Path) -> None:
    handler = RecordingHandler()
    rows = people(ROWS)
    master = PrivateRedis().start()
    proc, port = _sentinel(master.port, tmp_path)
    url = f"redis+sentinel://127.0.0.1:{port}/mfmaster/0"
    try:
        with SMTPServer(handler) as server:
            job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
            with Workers(1, url, "mfs", tmp_path) as workers:
                sent = run_cli("send", str(job), "--redis", url, "--prefix", "mfs", "--json")
            log = workers.log(0)
        # The job's keys are on the master the Sentinel named.
        on_master = redis.Redis(port=master.port).keys("mfs:{*}:st")
    finally:
        proc.terminate()
        proc.wait(10)
        master.stop()
    assert sent.returncode == 0, sent.stderr + log
    assert json.loads(sent.stdout)["sent"] == ROWS
    assert Counter(r for m in handler.received for r in m.rcpt_tos) == Counter(
        {r[0]: 1 for r in rows}
    )
    assert len(on_master) == 1
