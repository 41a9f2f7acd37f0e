"""A result's spool record made in compiled code is the record the Python way made (issue 17).

``mailsflux.jobs._settle`` makes the record a result is written as (for
``Journal.settle`` one at a time, for a delivered batch a batch at a
time). Random results (any recipient, with or without an "@", upper case
and non-ASCII domains, any status and category) against random held
rows, a queue run's earlier records and parked messages go through it and
through ``Journal._record`` as it was, kept here: the same records, the
same domains, the same rows left held, prior and parked.
"""

from __future__ import annotations

import copy

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.jobs import _settle
from mailsflux.spool import Record
from mailsflux.types import DeliveryResult, RenderedMessage

NOW = 1_700_000_000.25

_results = st.builds(
    DeliveryResult,
    recipient=st.one_of(
        st.text(max_size=12),
        st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=6), st.text(max_size=10)),
        st.sampled_from(["a@Example.COM", "x@b@ÄÖ.De", "İ@İstanbul.TR", "no-at"]),
    ),
    message_id=st.text(max_size=8),
    status=st.sampled_from(["delivered", "deferred", "bounced", "failed", "skipped"]),
    code=st.one_of(st.none(), st.integers(200, 599)),
    enhanced_status=st.one_of(st.none(), st.sampled_from(["2.0.0", "5.1.1"])),
    reply=st.text(max_size=20),
    attempts=st.integers(0, 9),
    row=st.integers(1, 6),
    category=st.sampled_from(["delivered", "suppressed", "bad_mailbox", ""]),
)
_prior = st.dictionaries(
    st.integers(1, 6),
    st.builds(
        lambda row, n, first: Record(row=row, state="deferred", attempts=n, first_at=first),
        st.integers(1, 6),
        st.integers(0, 5),
        st.floats(0, 1e9),
    ),
)
_parked = st.dictionaries(
    st.integers(1, 6),
    st.builds(
        lambda row, first: (RenderedMessage("s@x.org", "r@y.org", b"d", "m", row=row), first),
        st.integers(1, 6),
        st.floats(0, 1e9),
    ),
)


def _python_record(
    r: DeliveryResult,
    now: float,
    held: set[int],
    prior: dict[int, Record],
    parked: dict[int, tuple[RenderedMessage, float]],
) -> tuple[Record, tuple[RenderedMessage, float] | None, str]:
    # Journal._record before issue 17 moved it into compiled code.
    row = r.row
    if held:
        held.discard(row)
    before = prior.pop(row, None) if prior else None
    kept = parked.pop(row, None) if parked else None
    attempts = r.attempts
    if before is not None:
        attempts += before.attempts
        first = before.first_at
    else:
        first = kept[1] if kept else now
    category = r.category
    rec = Record(
        row=row,
        state="suppressed" if category == "suppressed" else r.status,
        recipient=r.recipient,
        message_id=r.message_id,
        domain=r.domain,
        attempts=attempts,
        first_at=first,
        code=r.code,
        enhanced_status=r.enhanced_status,
        reply=r.reply,
        category=category,
        updated=now,
    )
    return rec, kept, r.domain


def _plain(rec: Record) -> dict[str, object]:
    return msgspec.structs.asdict(rec)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_results, max_size=10),
    st.sets(st.integers(1, 6)),
    _prior,
    _parked,
)
def test_records_are_what_the_python_way_made(
    rs: list[DeliveryResult],
    held: set[int],
    prior: dict[int, Record],
    parked: dict[int, tuple[RenderedMessage, float]],
) -> None:
    theirs = (set(held), copy.copy(prior), copy.copy(parked))
    want = [_python_record(r, NOW, *theirs) for r in rs]

    one = (set(held), copy.copy(prior), copy.copy(parked))
    got = [_settle.record_of(r, NOW, *one, Record) for r in rs]
    assert [(_plain(a), b, c) for a, b, c in got] == [(_plain(a), b, c) for a, b, c in want]
    assert one == theirs

    many = (set(held), copy.copy(prior), copy.copy(parked))
    records, domains = _settle.delivered_records(rs, NOW, *many, Record)
    assert [_plain(r) for r in records] == [_plain(w[0]) for w in want]
    assert domains == [w[2] for w in want] == [r.domain for r in rs]
    assert _settle.domains(rs) == domains
    assert many == theirs
