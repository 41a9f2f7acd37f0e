"""A deferred message sealed with a key this host's file lacks (it lags a
rotation) waits in the Redis spool: not dropped, not set aside, said once;
due again a minute later, and opened once the file holds the key."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from mailsflux.spool import Record, SpoolKeys
from mailsflux.spool.redis_spool import RedisSpool
from tests._jobs import messages

pytestmark = pytest.mark.redis


def test_a_deferred_message_waits_for_the_key(tmp_path: Path, redis_url: str, prefix: str) -> None:
    old, new = tmp_path / "old-keys", tmp_path / "new-keys"
    SpoolKeys.load(old)
    shutil.copy(old, new)
    os.chmod(new, 0o600)
    kid = SpoolKeys.load(new).rotate()
    msg = messages(1)[0]
    with RedisSpool(redis_url, prefix=prefix, key_file=new) as writer:
        writer.store(
            "j1",
            [
                Record(
                    row=7,
                    state="deferred",
                    recipient=msg.rcpt_to,
                    domain="example.com",
                    attempts=1,
                    next_at=time.time() - 1,
                    message=msg,
                )
            ],
        )
    said: list[str] = []
    with RedisSpool(redis_url, prefix=prefix, key_file=old) as lagging:
        lagging.on_missing_key = said.append
        assert lagging.due(time.time(), job="j1") == []
        assert lagging.due(time.time() + 1, job="j1") == []  # claimed for a minute
        assert lagging.states("j1", [7]) == ["deferred"]
        assert lagging.quarantined("j1") == {}
        assert lagging.counts("j1") == {"deferred": 1}
        assert lagging.due(time.time() + 61, job="j1") == []  # due again, still no key
        assert len(said) == 1 and kid in said[0]
        shutil.copy(new, old)  # the rotated file arrives: read again on its own
        got = lagging.due(time.time() + 122, job="j1")
    assert [s.record.row for s in got] == [7]
    assert got[0].message.rcpt_to == msg.rcpt_to
