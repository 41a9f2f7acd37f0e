"""The embedded spool on its own: states, sealed records, claims, keys."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import JobInfo, Record, SpoolKeys, SQLiteSpool
from tests._spool_contract import changed_recipients_refused, states_and_claims
from tests._spool_contract import msg as _msg


def _job(spool: SQLiteSpool, fp: str = "sha256:aa") -> JobInfo:
    return spool.begin_job(JobInfo(id="job-1", name="news", source="/x/job.toml", fingerprint=fp))


def test_states_round_trip_and_due_messages_are_claimed(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    _job(spool)
    states_and_claims(spool)  # the same checks as the Redis spool's


def test_a_changed_recipient_file_is_not_mixed_into_a_resumed_job(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    changed_recipients_refused(spool)


def test_nothing_in_the_spool_directory_is_readable_plain_text(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    _job(spool)
    spool.store(
        "job-1",
        [
            Record(
                row=n,
                state="deferred",
                recipient=f"secret.person{n}@example.org",
                reply=f"450 <secret.person{n}@example.org> try later",
                message=_msg(n),
            )
            for n in range(1, 50)
        ],
    )
    spool.close()
    blob = b"".join(p.read_bytes() for p in (tmp_path / "s").iterdir() if p.name != "keys")
    assert b"secret.person" not in blob and b"confidential" not in blob
    assert b"news@sender.example" not in blob
    for p in (tmp_path / "s").iterdir():
        assert p.stat().st_mode & 0o077 == 0, p
    assert (tmp_path / "s").stat().st_mode & 0o077 == 0


def test_an_altered_or_moved_record_does_not_open(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    _job(spool)
    spool.store("job-1", [Record(row=1, state="deferred", message=_msg(1))])
    spool.store("job-1", [Record(row=2, state="deferred", message=_msg(2))])
    db = sqlite3.connect(tmp_path / "s" / "spool.db")
    one = db.execute("SELECT data FROM body WHERE row = 1").fetchone()[0]
    db.execute("UPDATE body SET data = ? WHERE row = 2", (one,))
    db.commit()
    with pytest.raises(SpoolError, match="does not authenticate"):
        spool.message("job-1", 2)
    flipped = bytes([*one[:-1], one[-1] ^ 1])
    db.execute("UPDATE body SET data = ? WHERE row = 1", (flipped,))
    db.commit()
    with pytest.raises(SpoolError, match="does not authenticate"):
        spool.message("job-1", 1)


def test_keys_rotate_and_old_records_still_open(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    _job(spool)
    spool.store("job-1", [Record(row=1, state="deferred", message=_msg(1))])
    old = spool.keys.current_id
    new = spool.keys.rotate()
    assert new != old
    spool.store("job-1", [Record(row=2, state="deferred", message=_msg(2))])
    reopened = SQLiteSpool(tmp_path / "s")
    assert reopened.keys.current_id == new
    assert reopened.message("job-1", 1) == _msg(1)
    assert reopened.reseal() == 2  # row 1's meta and body were under the old key
    only_new = (tmp_path / "s" / "keys").read_text().splitlines()
    (tmp_path / "s" / "keys").write_text("\n".join(line for line in only_new if old not in line))
    assert SQLiteSpool(tmp_path / "s").message("job-1", 1) == _msg(1)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    SQLiteSpool(tmp_path / "s").close()
    key = tmp_path / "s" / "keys"
    assert key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o644)
    with pytest.raises(SpoolError, match=r"readable by others.*0600"):
        SQLiteSpool(tmp_path / "s")
    os.chmod(key, 0o600)
    key.write_text("nonsense\n")
    with pytest.raises(SpoolError, match="not a spool key") as info:
        SQLiteSpool(tmp_path / "s")
    assert info.value.line == 1


def test_a_record_sealed_with_a_key_no_longer_held_says_so(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s", keys=SpoolKeys.generate())
    _job(spool)
    spool.store("job-1", [Record(row=1, state="deferred", message=_msg(1))])
    other = SQLiteSpool(tmp_path / "s", keys=SpoolKeys.generate())
    with pytest.raises(SpoolError, match="no longer holds"):
        other.message("job-1", 1)


@pytest.mark.parametrize("count", [1, 31, 32, 33, 100])
def test_a_batch_of_results_is_written_whole_and_in_order(tmp_path: Path, count: int) -> None:
    # Records go in up to 32 to an INSERT: every one lands, sealed for its own
    # row, and a row named twice in one batch keeps its last record (as one
    # INSERT a record did).
    spool = SQLiteSpool(tmp_path / "s")
    _job(spool)
    batch = [
        Record(row=n, state="delivered", recipient=f"r{n}@example.com", domain="example.com")
        for n in range(1, count + 1)
    ]
    batch.append(Record(row=1, state="bounced", recipient="again@example.com", code=550))
    spool.store("job-1", batch)
    got = spool.records("job-1", limit=1000)
    assert [r.row for r in got] == list(range(1, count + 1))
    assert (got[0].state, got[0].recipient, got[0].code) == ("bounced", "again@example.com", 550)
    assert [r.recipient for r in got[1:]] == [f"r{n}@example.com" for n in range(2, count + 1)]
    delivered = {"delivered": count - 1} if count > 1 else {}
    assert spool.counts("job-1") == {"bounced": 1, **delivered}
