"""A job's rows composed a batch at a time keep every row's outcome and order (issue 17).

``compose_batches`` hands a send its messages a batch at a time, each
batch's problems apart with the number of its messages before each. A job
whose rows are refused by the composer for some address lengths (a long job
name makes the tracked List-Unsubscribe URI too long), suppressed by the
list file, or bad to the reader, in random order: put back together by those
counts, the batches give the same messages and problems, in the same order,
as composing each row alone; ``compose_all`` gives the same, and no batch
holds more than COMPOSE_BATCH messages. So does a shard of a resumed job,
its settled rows passed over.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mailsflux.errors import MailsfluxError
from mailsflux.jobs import Prepared, compose_all
from mailsflux.jobs.composer import message_tokens
from mailsflux.jobs.rows import COMPOSE_BATCH, _row_problem, compose_batches
from mailsflux.types import Problem, Recipient
from tests._jobs import make_job

TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
"""
# With this long a job name, addresses of more than a few characters make
# the tracked unsubscribe URI too long: the composer refuses those rows.
NAME = "n" * 560


def _job(tmp_path: Path, seed: int) -> tuple[Path, set[str]]:
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for i in range(150):
        kind = rng.randrange(10)
        if kind == 0:
            rows.append([f"bad-{i}", "X", "X", "Team"])
        else:
            rows.append([f"{'x' * rng.randrange(1, 30)}{i}@example.com", "X", "X", "Pro"])
    job = make_job(tmp_path, rows, algorithm="ed25519-sha256")
    suppressed = {r[0] for r in rows if "@" in r[0] and rng.randrange(8) == 0}
    (job.parent / "suppressed.txt").write_text("".join(f"{s.upper()}\n" for s in suppressed))
    text = f'name = "{NAME}"\n' + job.read_text()
    text = text.replace(
        'file = "recipients.csv"\n', 'file = "recipients.csv"\nsuppression = "suppressed.txt"\n'
    )
    job.write_text(text + TRACKING)
    return job, suppressed


def _alone(
    prepared: Prepared, shard: tuple[int, int] = (0, 1), settled: bytearray | None = None
) -> list[tuple[str, str]]:
    """Each row composed alone, as a row at a time was (the rows of ``shard``,
    those set in ``settled`` passed over)."""
    out: list[tuple[str, str]] = []
    rf = prepared.recipients
    assert prepared.suppressed is not None
    for item in rf.rows(shard):
        if isinstance(item, Problem):
            out.append(("problem", str(item)))
            continue
        assert isinstance(item, Recipient)
        n = item.row
        if settled is not None and n < len(settled) * 8 and settled[n >> 3] >> (n & 7) & 1:
            continue
        if item.email in prepared.suppressed:
            what = f"{item.email}: suppressed; row skipped"
            out.append(("problem", f"{rf.path}:{item.row}: warning: {what}"))
            continue
        (got,) = prepared.composer.compose_many([(item, message_tokens(1)[0])])
        if isinstance(got, MailsfluxError):
            out.append(("problem", str(_row_problem(rf.path, item, got))))
        else:
            out.append(("sent", got.rcpt_to))
    return out


def _put_together(
    prepared: Prepared, shard: tuple[int, int] = (0, 1), settled: bytearray | None = None
) -> list[tuple[str, str]]:
    """compose_batches' batches, each problem put back by its count."""
    got: list[tuple[str, str]] = []
    for messages, problems in compose_batches(
        prepared.composer, prepared.recipients, prepared.suppressed, shard, settled
    ):
        assert len(messages) <= COMPOSE_BATCH
        at = 0
        for before, problem in problems:
            assert at <= before <= len(messages)
            got += [("sent", m.rcpt_to) for m in messages[at:before]]
            got.append(("problem", str(problem)))
            at = before
        got += [("sent", m.rcpt_to) for m in messages[at:]]
    return got


def test_a_shard_of_a_resumed_job_keeps_its_rows_outcomes(tmp_path: Path) -> None:
    job, _ = _job(tmp_path, 7)
    prepared = Prepared.load(job)
    settled = bytearray(random.Random(7).randbytes(12))  # rows up to 95
    try:
        for shard in ((0, 2), (1, 2)):
            want = _alone(prepared, shard, settled)
            assert any(e[0] == "sent" for e in want)
            assert _put_together(prepared, shard, settled) == want, shard
            assert len(want) < len(_alone(prepared, shard))  # some rows were settled
    finally:
        prepared.close()


@pytest.mark.parametrize("seed", range(3))
def test_batches_keep_every_rows_outcome_and_order(tmp_path: Path, seed: int) -> None:
    job, suppressed = _job(tmp_path, seed)
    prepared = Prepared.load(job)
    try:
        want = _alone(prepared)
        kinds = {e[1].split(": ")[-1] if e[0] == "problem" else "sent" for e in want}
        assert "sent" in kinds and "suppressed; row skipped" in kinds, kinds
        assert any("longer than" in e[1] for e in want)  # the composer refused some
        assert any("bad-" in e[1] for e in want)  # the reader refused some

        assert _put_together(prepared) == want

        reported: list[tuple[str, str]] = []
        for m in compose_all(
            prepared.composer,
            prepared.recipients,
            lambda p: reported.append(("problem", str(p))),
            prepared.suppressed,
        ):
            reported.append(("sent", m.rcpt_to))
        assert reported == want
    finally:
        prepared.close()
    assert suppressed
