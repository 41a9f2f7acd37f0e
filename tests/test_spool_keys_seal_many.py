"""Sealing a batch at once (a spool commit's rows): each value opens under
its own context only, and every nonce is its own, within a batch and across
batches, though the batch's nonces come from one read of the OS."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.errors import SpoolError
from mailsflux.spool import Record, SpoolKeys, SQLiteSpool

_HEAD = 1 + 4  # version, key id
_NONCE = 12


def _keys(tmp_path: Path) -> SpoolKeys:
    return SpoolKeys.load(tmp_path / "keys")


def test_each_opens_under_its_own_context(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    items = [(f"ann{i}@x.test".encode(), b"job\x00%d\x00meta" % i) for i in range(40)]
    sealed = keys.seal_many(items)
    assert [keys.open(s, ctx) for s, (_, ctx) in zip(sealed, items, strict=True)] == [
        p for p, _ in items
    ]
    # A value moved to another row does not open there.
    with pytest.raises(SpoolError, match="does not authenticate"):
        keys.open(sealed[0], items[1][1])
    # What seal() makes, seal_many() makes: the same layout, the same key.
    one = keys.seal(b"bo@x.test", b"ctx")
    assert one[:_HEAD] == sealed[0][:_HEAD]
    assert len(one) == len(keys.seal_many([(b"bo@x.test", b"ctx")])[0])


def test_no_nonce_repeats_within_or_across_batches(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    nonces = [
        s[_HEAD : _HEAD + _NONCE]
        for _ in range(50)
        for s in keys.seal_many([(b"same", b"same")] * 32)
    ]
    assert len(set(nonces)) == len(nonces) == 1600


def test_an_empty_batch_seals_nothing(tmp_path: Path) -> None:
    assert _keys(tmp_path).seal_many([]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=80)), max_size=40))
def test_any_batch_round_trips(
    tmp_path_factory: pytest.TempPathFactory, items: list[tuple[bytes, bytes]]
) -> None:
    keys = SpoolKeys.load(tmp_path_factory.getbasetemp() / "seal-many-keys")
    sealed = keys.seal_many(items)
    assert len(sealed) == len(items)
    for s, (plain, ctx) in zip(sealed, items, strict=True):
        assert type(s) is bytes
        assert keys.open(s, ctx) == plain
    # As blobs (what the SQLite spool binds): bytearrays that open the same.
    blobs = keys.seal_many(items, blob=True)
    assert len(blobs) == len(items)
    for b, (plain, ctx) in zip(blobs, items, strict=True):
        assert type(b) is bytearray
        assert keys.open(bytes(b), ctx) == plain


def test_the_spool_binds_its_sealed_parts_as_blobs(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "spool", keys=_keys(tmp_path))
    # A bytes value would go through sqlite3's adapters: count any that do.
    adapted: list[bytes] = []
    sqlite3.register_adapter(bytes, lambda b: adapted.append(b) or b)
    try:
        spool.store("j", [Record(row=1, recipient="a@x.test", state="pending")])
    finally:
        del sqlite3.adapters[(bytes, sqlite3.PrepareProtocol)]
    assert adapted == []
    db = sqlite3.connect(tmp_path / "spool" / "spool.db")
    (kind,) = db.execute("SELECT typeof(meta) FROM rcpt WHERE job = 'j'").fetchone()
    assert kind == "blob"
    (got,) = spool.records("j")
    assert got.recipient == "a@x.test" and got.state == "pending"
