"""Sealing a batch at once (a spool commit's rows): each value opens under
its own context only, and every nonce is its own, within a batch and across
batches, though the batch's nonces come from one read of the OS."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.errors import SpoolError
from mailsflux.spool import SpoolKeys

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
        assert keys.open(s, ctx) == plain
