"""A worker host whose key file lags a rotation loses nothing.

The hosts have run with one key file (its key id recorded in Redis); the
enqueuing host rotates, and the copy to the worker's host has not arrived.
``send --redis`` enqueues with the new key; the real worker cannot open the
batches: it says which key it lacks (once), leaves them pending, sets none
aside, and the job is not finished. Once the new file is in place the worker
reads it again by itself, takes the batches over after the lease, and sends
every row once; ``send --redis`` exits 0 with the file's full total."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mailsflux.jobs.worker import GROUP
from mailsflux.spool import SpoolKeys
from mailsflux.spool.redis_spool import RedisSpool
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 150  # three batches


def _wait_for(what: str, check: object, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_batches_wait_for_a_key_the_workers_file_lacks(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    old, new = tmp_path / "old-keys", tmp_path / "new-keys"
    SpoolKeys.load(old)
    with RedisSpool(redis_url, prefix=prefix, key_file=old) as spool:
        spool.check_keys()  # the hosts' first key is the spool's
    shutil.copy(old, new)
    os.chmod(new, 0o600)
    kid = SpoolKeys.load(new).rotate()

    handler = RecordingHandler()
    rows = people(ROWS)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        with Workers(1, redis_url, prefix, tmp_path, "--key-file", str(old), "--lease", "2") as w:
            send = subprocess.Popen(
                [
                    *(sys.executable, "-m", "mailsflux", "send", str(job), "--json"),
                    *("--redis", redis_url, "--prefix", prefix, "--key-file", str(new)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                _wait_for("the missing key's note", lambda: kid in w.log(0))
                # Three leases: each batch has been tried more than once by now.
                time.sleep(6)
                with RedisSpool(redis_url, prefix=prefix, key_file=new) as spool:
                    (info,) = spool.jobs()
                    assert info.state == "running"
                    assert spool.quarantined(info.id) == {}
                    assert "quarantined" not in spool.counts(info.id)
                    pending = spool.client.xpending(spool.key(info.id, "q"), GROUP)
                    assert pending["pending"] >= 1
                    assert handler.received == []
                assert send.poll() is None  # still following: the job is not done
                # The new key file reaches the worker's host.
                tmp = tmp_path / ".old-keys.new"
                shutil.copy(new, tmp)
                os.chmod(tmp, 0o600)
                os.replace(tmp, old)
                out, err = send.communicate(timeout=120)
            finally:
                if send.poll() is None:
                    send.kill()
                    send.wait()
            log = w.log(0)
    assert send.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["total"] == ROWS and summary["sent"] == ROWS, summary
    assert summary["quarantined"] == 0
    arrived = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert arrived == Counter({r[0]: 1 for r in rows})
    assert log.count(kid) == 1, log  # said once, however often it was met
    assert "set aside" not in log, log
