"""What every spool does, checked the same way for the embedded one and the Redis one."""

from __future__ import annotations

import time

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import CLAIM, JobInfo, Record, SQLiteSpool
from mailsflux.spool.redis_spool import RedisSpool
from mailsflux.types import RenderedMessage


def msg(row: int) -> RenderedMessage:
    return RenderedMessage(
        mail_from="news@sender.example",
        rcpt_to=f"secret.person{row}@example.org",
        data=b"Subject: hi\r\n\r\nconfidential body text %d\r\n" % row,
        message_id=f"<m{row}@sender.example>",
        row=row,
    )


def states_and_claims(spool: SQLiteSpool | RedisSpool) -> None:
    """States round-trip, due messages are claimed, settled ones lose their bytes
    (job ``job-1`` begun)."""
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
                message=msg(3),
            ),
            Record(
                row=4, state="deferred", domain="example.org", next_at=now + 3600, message=msg(4)
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
    assert due[0].message == msg(3)
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
        [Record(row=4, state="deferred", domain="example.org", next_at=now + 60, message=msg(4))],
    )
    assert spool.next_due("job-1") == pytest.approx(now + 60)
    assert spool.drop(job="job-1") == 1
    assert spool.counts("job-1") == {"delivered": 2, "failed": 1}
    assert spool.message("job-1", 4) is None
    dropped = spool.load("job-1", 4)
    assert dropped is not None and dropped.category == "dropped" and dropped.state == "failed"
    assert [r.row for r in spool.records("job-1", states=("delivered",))] == [2, 3]


def job(spool: SQLiteSpool | RedisSpool, fp: str = "sha256:aa") -> JobInfo:
    return spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint=fp))


def changed_recipients_refused(spool: SQLiteSpool | RedisSpool) -> None:
    """A job whose recipients changed is refused, and starts over with restart."""
    job(spool)
    with pytest.raises(SpoolError, match=r"recipients have changed.*--restart"):
        job(spool, fp="sha256:bb")
    spool.store("job-1", [Record(row=1, state="delivered")])
    info = spool.begin_job(
        JobInfo(id="job-1", name="news", source="/x", fingerprint="sha256:bb"), restart=True
    )
    assert info.fingerprint == "sha256:bb" and spool.counts("job-1") == {}
    assert [i.id for i in spool.jobs()] == ["job-1"]
