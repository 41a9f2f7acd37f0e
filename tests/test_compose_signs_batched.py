"""A job's rows are composed a batch at a time, every message assembled
before the first is signed (one sign after another keeps the CPU's caches
warm: with RSA-2048 some 12 us a message). The messages are the bytes that
composing one row at a time gives, each signature is dated by its own
message's Date field, and problems and messages still come in the rows'
order."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux.benchmark.sample import write_job
from mailsflux.jobs import Prepared
from mailsflux.jobs.composer import message_tokens
from mailsflux.jobs.rows import COMPOSE_BATCH
from mailsflux.types import Problem, Recipient
from tests._jobs import make_job, people


def _rows(prepared: Prepared) -> list[Recipient]:
    return [r for r in prepared.recipients.rows() if isinstance(r, Recipient)]


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_a_batch_is_the_messages_of_one_row_at_a_time(tmp_path: Path, algorithm: str) -> None:
    # The sample job: tracked links, open pixel, one-click unsubscribe, signed.
    prepared = Prepared.load(write_job(tmp_path / "j", 40, algorithm=algorithm))
    try:
        composer = prepared.composer
        composer.clock = lambda: 1_790_000_000.0  # one Date, one sent-at for both ways
        # The unsubscribe token is stamped by the tracker's own clock: pinned
        # too, or the two ways differ whenever a second turns between them.
        assert composer.tracker is not None
        composer.tracker.clock = lambda: 1_790_000_000.0
        rows = _rows(prepared)
        tokens = message_tokens(len(rows))
        one = [composer.compose(r, t) for r, t in zip(rows, tokens, strict=True)]
        many = composer.compose_many(list(zip(rows, tokens, strict=True)))
    finally:
        prepared.close()
    assert len(one) == 40 and b"DKIM-Signature: " in one[0].data
    assert many == one


def _stamps(data: bytes) -> tuple[int, int]:
    """(the Date field's second, the DKIM-Signature's t=)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    date = re.search(r"^Date: (.*)$", head, re.M)
    t = re.search(r"\bt=(\d+);", head)
    assert date is not None and t is not None, head[:400]
    parsed = email.utils.parsedate_to_datetime(date.group(1))
    return int(parsed.timestamp()), int(t.group(1))


def test_each_signature_is_dated_by_its_own_message(tmp_path: Path) -> None:
    prepared = Prepared.load(make_job(tmp_path, people(6), algorithm="ed25519-sha256"))
    ticks: Iterator[float] = (1_790_000_000.0 + i for i in range(1000))
    try:
        composer = prepared.composer
        composer.clock = lambda: next(ticks)  # a new second at every look
        rows = _rows(prepared)
        many = composer.compose_many(list(zip(rows, message_tokens(6), strict=True)))
    finally:
        prepared.close()
    stamps = [_stamps(m.data) for m in many]  # type: ignore[union-attr]
    assert len({d for d, _ in stamps}) == 6  # six seconds: the test can tell them apart
    assert all(d == t for d, t in stamps), stamps


def test_problems_and_messages_come_in_the_rows_order(tmp_path: Path) -> None:
    rows = people(3 * COMPOSE_BATCH)
    rows[9][0] = "not an address"  # refused by the reader
    rows[40][2] = "Eve\r\nBcc: x@evil.example"  # refused by the composer (its subject)
    rows[70][0] = rows[69][0]  # a duplicate address: a warning from the reader
    prepared = Prepared.load(make_job(tmp_path, rows, algorithm="ed25519-sha256"))
    seen: list[tuple[str, int]] = []

    def problem(p: Problem) -> None:
        seen.append(("problem", int(p.where.rsplit(":", 1)[1])))

    try:
        for m in prepared.messages(problem):
            seen.append(("message", m.row))
    finally:
        prepared.close()
    # Every row once, in the file's order (rows are numbered by their first
    # line, and row 40's field spans two), the three problems in their places.
    lines = [r for _, r in seen]
    assert len(lines) == len(rows) and lines == sorted(set(lines)), lines
    assert [i for i, (what, _) in enumerate(seen) if what == "problem"] == [9, 40, 70]
