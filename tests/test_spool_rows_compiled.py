"""A spool commit's rows made and sealed in compiled code are what the Python way made (issue 17).

``mailsflux.spool._records`` makes the ``rcpt`` values, the parts to seal
with their contexts, and seals them. Random records (any text, states,
kept messages or none, rows up to 2**62) go through it and through
``SQLiteSpool._write``'s loop as it was, kept here; seals made with the
same nonces are the same bytes and open with the spool's own key ring;
and a real spool stores and reads back what it was given.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.spool import FINAL, Record, SpoolKeys, SQLiteSpool, _records
from mailsflux.spool.store import JobInfo
from mailsflux.types import RenderedMessage

NOW = 1_700_000_000.5
_meta = msgspec.msgpack.Encoder().encode

_messages = st.one_of(
    st.none(),
    st.builds(
        lambda to, data, row: RenderedMessage("s@x.org", to, data, "m", row=row),
        st.text(max_size=8),
        st.binary(max_size=30),
        st.integers(0, 99),
    ),
)
_records_st = st.builds(
    Record,
    row=st.integers(-5, 2**62),
    state=st.sampled_from(["pending", "delivered", "deferred", "bounced", "failed", "suppressed"]),
    recipient=st.text(max_size=12),
    message_id=st.text(max_size=8),
    domain=st.text(max_size=8),
    attempts=st.integers(0, 9),
    first_at=st.floats(0, 1e10),
    next_at=st.floats(0, 1e10),
    code=st.one_of(st.none(), st.integers(200, 599)),
    enhanced_status=st.one_of(st.none(), st.just("5.1.1")),
    reply=st.text(max_size=20),
    category=st.text(max_size=6),
    updated=st.sampled_from([0.0, 12.5]),
    message=_messages,
)


def _python_rows(
    records: list[Record], job: str, now: float, claimed: float
) -> tuple[
    list[object], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], list[int], list[int]
]:
    # SQLiteSpool._write's loop before issue 17 moved it into compiled code
    # (since then the job is bound once a statement, not in each row's values).
    head = f"{job}\x00".encode()
    values: list[object] = []
    metas, bodies, rows, released = [], [], [], []
    for r in records:
        meta = _meta((r.recipient, r.message_id, r.reply, r.enhanced_status))
        metas.append((meta, b"%s%d\x00%s" % (head, r.row, b"meta")))
        values.extend([r.row, r.state, r.domain, r.attempts, r.first_at, r.next_at, r.code])
        values.extend([r.category, r.updated or now, None, claimed])
        if r.message is not None:
            bodies.append(
                (msgspec.msgpack.encode(r.message), b"%s%d\x00%s" % (head, r.row, b"body"))
            )
            rows.append(r.row)
        elif r.state in FINAL:
            released.append(r.row)
    return values, metas, bodies, rows, released


@settings(max_examples=300, deadline=None)
@given(st.lists(_records_st, max_size=8), st.text(max_size=10), st.sampled_from([0.0, 99.5]))
def test_rows_are_what_the_python_way_made(records: list[Record], job: str, claimed: float) -> None:
    head = f"{job}\x00".encode()
    got = _records.row_values(records, head, NOW, claimed, _meta, msgspec.msgpack.encode, FINAL)
    assert got == _python_rows(records, job, NOW, claimed)
    for r in records:
        for part in (b"meta", b"body", b""):
            assert _records.context(head, r.row, part) == b"%s%d\x00%s" % (head, r.row, part)


class _Partial(msgspec.Struct):
    """A Struct with some of a Record's fields, not all, in another order."""

    recipient: str
    state: str
    row: int


def test_a_struct_without_a_records_fields_leaves_the_next_rows_right() -> None:
    # Field positions are learnt a type at a time (astuple): a type that
    # lacks one is refused, and leaves nothing of its positions behind.
    first = [Record(row=1, state="delivered", recipient="a@x.org", code=250, reply="ok")]
    args = (b"job\x00", NOW, 0.0, _meta, msgspec.msgpack.encode, FINAL)
    assert _records.row_values(first, *args) == _python_rows(first, "job", NOW, 0.0)
    with pytest.raises(ValueError):
        _records.row_values([_Partial("c@x.org", "x", 2)], *args)  # type: ignore[list-item]
    again = [Record(row=3, state="bounced", recipient="b@x.org", domain="x.org", attempts=2)]
    assert _records.row_values(again, *args) == _python_rows(again, "job", NOW, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=20)), max_size=8))
def test_seals_are_the_python_way_and_open(items: list[tuple[bytes, bytes]]) -> None:
    key = AESGCM(b"k" * 32)
    head = b"\x01" + b"K" * 8
    nonces = os.urandom(12 * len(items))
    want = [
        head + nonces[12 * i : 12 * i + 12] + key.encrypt(nonces[12 * i : 12 * i + 12], p, c)
        for i, (p, c) in enumerate(items)
    ]
    assert _records.seal_each(key.encrypt, head, nonces, items) == want


def test_encrypt_must_give_bytes() -> None:
    with pytest.raises(TypeError, match="None"):
        _records.seal_each(lambda n, p, c: None, b"h", b"x" * 12, [(b"a", b"b")])  # type: ignore[arg-type,return-value]


def test_uneven_nonces_are_refused() -> None:
    with pytest.raises(ValueError, match="nonces"):
        _records.seal_each(AESGCM(b"k" * 32).encrypt, b"h", b"x" * 25, [(b"a", b"b")] * 2)


def test_the_key_ring_seals_what_it_opens(tmp_path: Path) -> None:
    keys = SpoolKeys.load(tmp_path / "keys", create=True)
    items = [(os.urandom(n), b"job\x00%d\x00meta" % n) for n in range(20)]
    sealed = keys.seal_many(items)
    assert len({s[5:17] for s in sealed}) == len(items)  # a nonce each (after version, key id)
    assert [keys.open(s, c) for s, (_, c) in zip(sealed, items, strict=True)] == [
        p for p, _ in items
    ]
    assert keys.seal_many([]) == []


def test_a_spool_stores_and_reads_back_its_rows(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "spool")
    try:
        info = spool.begin_job(JobInfo(id="job-x", name="x", source="s", fingerprint="f"))
        msg = RenderedMessage("s@x.org", "held@y.org", b"Subject: s\r\n\r\nhi\r\n", "m0")
        (row,) = spool.append_many(info.id, [Record(row=0, state="pending", message=msg)])
        spool.store(
            info.id,
            [
                Record(
                    row=row,
                    state="delivered",
                    recipient="held@y.org",
                    message_id="m0",
                    domain="y.org",
                    attempts=1,
                    code=250,
                    reply="2.0.0 ok",
                    category="delivered",
                ),
                Record(
                    row=row + 1,
                    state="bounced",
                    recipient="ünï@z.org",
                    message_id="m1",
                    enhanced_status="5.1.1",
                    reply="no such user",
                    code=550,
                ),
            ],
        )
        got = {r.row: r for r in spool.records(info.id)}
        assert (got[row].state, got[row].recipient, got[row].reply) == (
            "delivered",
            "held@y.org",
            "2.0.0 ok",
        )
        assert (got[row + 1].recipient, got[row + 1].enhanced_status) == ("ünï@z.org", "5.1.1")
        # Delivered: its kept bytes are gone.
        assert spool.message(info.id, row) is None
    finally:
        spool.close()


def test_rows_across_statements_keep_their_own_values_and_job(tmp_path: Path) -> None:
    # 70 rows: three INSERTs (32, 32, 6), the job bound once each as ?1 and
    # each row's values numbered after it; two jobs, so a row's job is its own.
    spool = SQLiteSpool(tmp_path / "spool")
    try:
        want: dict[str, list[Record]] = {}
        for job in ("job-a", "job-b"):
            info = spool.begin_job(JobInfo(id=job, name=job, source="s", fingerprint="f"))
            want[job] = [
                Record(
                    row=r,
                    state=("delivered", "bounced", "deferred")[r % 3],
                    recipient=f"r{r}@{job}.org",
                    message_id=f"m{r}",
                    domain=f"d{r}.{job}.org",
                    attempts=r % 7,
                    first_at=1000.0 + r,
                    next_at=2000.0 + r,
                    code=200 + r,
                    enhanced_status=f"2.0.{r}",
                    reply=f"reply {r} {job}",
                    category=f"c{r}",
                    updated=3000.0 + r,
                )
                for r in range(1, 71)
            ]
            spool.store(info.id, want[job])
        for job, records in want.items():
            got = sorted(spool.records(job), key=lambda x: x.row)
            assert got == records
    finally:
        spool.close()
