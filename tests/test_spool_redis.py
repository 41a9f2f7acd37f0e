"""The Redis spool on its own, against a real Redis: states, claims, sealing, one slot a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from mailsflux.errors import SpoolError
from mailsflux.spool import CLAIM, JobInfo, Record, SpoolKeys
from mailsflux.spool.redis_spool import RedisSpool
from tests._spool_contract import changed_recipients_refused, states_and_claims
from tests._spool_contract import msg as _msg

pytestmark = pytest.mark.redis


@pytest.fixture
def spool(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[RedisSpool]:
    with RedisSpool(redis_url, prefix=prefix, key_file=tmp_path / "keys") as s:
        yield s


def _job(spool: RedisSpool, fp: str = "sha256:aa") -> JobInfo:
    return spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint=fp))


def test_states_round_trip_and_due_messages_are_claimed(spool: RedisSpool) -> None:
    _job(spool)
    states_and_claims(spool)


def test_appended_messages_get_rows_and_claims(spool: RedisSpool) -> None:
    _job(spool)
    recs = [Record(row=0, state="pending", domain="example.org", message=_msg(0)) for _ in range(3)]
    assert spool.append_many("job-1", recs) == [1, 2, 3]
    assert [r.message.row for r in recs if r.message] == [1, 2, 3]
    now = time.time()
    assert spool.due(now + 1) == []  # held by the process that stored them
    spool.extend_claim("job-1", [1], now + 2 * CLAIM)
    assert [d.record.row for d in spool.due(now + CLAIM + 1)] == [2, 3]
    assert spool.release_claims("job-1") == 3
    assert [d.record.row for d in spool.due(now + 1)] == [1, 2, 3]


def test_every_key_of_a_job_is_on_one_cluster_slot(spool: RedisSpool, redis_url: str) -> None:
    _job(spool)
    spool.store("job-1", [Record(row=1, state="deferred", next_at=1.0, message=_msg(1))])
    spool.due(time.time(), job="job-1")
    client = redis.Redis.from_url(redis_url)
    keys = [k for k in client.scan_iter(match=f"{spool.prefix}:{{job-1}}:*")]
    client.close()
    assert len(keys) >= 8
    assert {key_slot(k) for k in keys} == {key_slot(b"job-1")}


def test_nothing_in_redis_is_readable_plain_text(spool: RedisSpool, redis_url: str) -> None:
    _job(spool)
    spool.store(
        "job-1",
        [
            Record(
                row=5,
                state="deferred",
                recipient="secret.person5@example.org",
                reply="450 <secret.person5@example.org> busy",
                next_at=1.0,
                message=_msg(5),
            )
        ],
    )
    client = redis.Redis.from_url(redis_url)
    dump = b""
    for k in client.scan_iter(match=f"{spool.prefix}:*"):
        kind = client.type(k)
        if kind == b"hash":
            dump += b"".join(k + v for k, v in client.hgetall(k).items())
        elif kind == b"string":
            dump += client.get(k) or b""
    client.close()
    assert b"secret.person" not in dump and b"confidential" not in dump


def test_a_changed_recipient_list_is_not_mixed_into_a_job(spool: RedisSpool) -> None:
    changed_recipients_refused(spool)


def test_a_host_with_another_key_file_is_told_so(
    spool: RedisSpool, redis_url: str, prefix: str
) -> None:
    _job(spool)
    other = RedisSpool(redis_url, prefix=prefix, keys=SpoolKeys.generate())
    with pytest.raises(SpoolError, match="copy the key file"):
        _job(other)
    other.close()


def test_redis_unreachable_is_a_spool_error(tmp_path: Path) -> None:
    s = RedisSpool("redis://127.0.0.1:1/0", keys=SpoolKeys.generate())
    with pytest.raises(SpoolError, match=r"spool .* failed \(Redis\)"):
        s.counts("job-1")
    s.close()


def test_next_due_counts_claims(spool: RedisSpool) -> None:
    _job(spool)
    now = time.time()
    spool.store(
        "job-1",
        [
            Record(row=1, state="deferred", next_at=now - 10, message=_msg(1)),
            Record(row=2, state="deferred", next_at=now + 50, message=_msg(2)),
        ],
    )
    assert spool.next_due("job-1") == pytest.approx(now - 10)
    assert [d.record.row for d in spool.due(now)] == [1]  # claimed for CLAIM seconds
    assert spool.next_due("job-1") == pytest.approx(now + 50)
    spool.extend_claim("job-1", [2], now + 2 * CLAIM)
    assert spool.next_due("job-1") == pytest.approx(now + CLAIM, abs=5)
