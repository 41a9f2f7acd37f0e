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
from mailsflux.types import RenderedMessage

pytestmark = pytest.mark.redis


def _msg(row: int) -> RenderedMessage:
    return RenderedMessage(
        mail_from="news@sender.example",
        rcpt_to=f"secret.person{row}@example.org",
        data=b"Subject: hi\r\n\r\nconfidential body text %d\r\n" % row,
        message_id=f"<m{row}@sender.example>",
        row=row,
    )


@pytest.fixture
def spool(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[RedisSpool]:
    with RedisSpool(redis_url, prefix=prefix, key_file=tmp_path / "keys") as s:
        yield s


def _job(spool: RedisSpool, fp: str = "sha256:aa") -> JobInfo:
    return spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint=fp))


def test_states_round_trip_and_due_messages_are_claimed(spool: RedisSpool) -> None:
    _job(spool)
    now = time.time()
    spool.store(
        "job-1",
        [
            Record(row=2, state="delivered", recipient="a@example.org", domain="example.org"),
            Record(
                row=3,
                state="deferred",
                recipient="secret.person3@example.org",
                domain="example.org",
                attempts=2,
                first_at=now - 60,
                next_at=now - 1,
                code=451,
                reply="451 4.7.1 <secret.person3@example.org> greylisted",
                message=_msg(3),
            ),
            Record(
                row=4, state="deferred", domain="example.org", next_at=now + 3600, message=_msg(4)
            ),
        ],
    )
    assert spool.counts("job-1") == {"delivered": 1, "deferred": 2}
    assert spool.per_domain("job-1") == {"example.org": {"delivered": 1, "deferred": 2}}
    assert spool.settled_rows("job-1")[0] == 0b11100
    rec = spool.load("job-1", 3)
    assert rec is not None and rec.reply.endswith("greylisted") and rec.attempts == 2
    assert rec.recipient == "secret.person3@example.org" and rec.code == 451
    due = spool.due(now, job="job-1")
    assert [d.record.row for d in due] == [3]
    assert due[0].message == _msg(3)
    # Claimed: another runner does not get it until the claim has passed.
    assert spool.due(now) == []
    assert [d.record.row for d in spool.due(now + CLAIM + 1)] == [3]
    assert [d.record.row for d in spool.due(now + 3601)] == [3, 4]  # 3: its claim ran out
    # Settled: its bytes leave the spool.
    spool.store("job-1", [Record(row=3, state="delivered", domain="example.org")])
    assert spool.message("job-1", 3) is None and spool.message("job-1", 4) is not None
    assert spool.counts("job-1") == {"delivered": 2, "deferred": 1}
    assert spool.make_due(job="job-1") == 1
    assert spool.due(now + 3601) == []  # due now, but still claimed by its runner
    assert spool.drop(job="job-1") == 0  # being tried: left to finish
    spool.store(
        "job-1",
        [Record(row=4, state="deferred", domain="example.org", next_at=now + 60, message=_msg(4))],
    )
    assert spool.next_due("job-1") == pytest.approx(now + 60)
    assert spool.drop(job="job-1") == 1
    assert spool.counts("job-1") == {"delivered": 2, "failed": 1}
    assert spool.message("job-1", 4) is None
    dropped = spool.load("job-1", 4)
    assert dropped is not None and dropped.category == "dropped" and dropped.state == "failed"
    assert [r.row for r in spool.records("job-1", states=("delivered",))] == [2, 3]


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
    _job(spool)
    with pytest.raises(SpoolError, match=r"recipients have changed.*--restart"):
        _job(spool, fp="sha256:bb")
    spool.store("job-1", [Record(row=1, state="delivered")])
    info = spool.begin_job(
        JobInfo(id="job-1", name="news", source="/x", fingerprint="sha256:bb"), restart=True
    )
    assert info.fingerprint == "sha256:bb" and spool.counts("job-1") == {}
    assert [i.id for i in spool.jobs()] == ["job-1"]


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
