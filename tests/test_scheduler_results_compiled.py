"""A delivered batch settled in compiled code settles as the Python path did (issue 17).

``mailsflux.delivery._results`` makes a batch whose every message was
delivered into its results in one call. Random batches (any text in the
replies, enhanced statuses or none, replies longer than a result keeps,
earlier attempts; the status found with and without the compiled prefix
test first) go through it and through the scheduler's Python way,
kept here as it was: the same results, the same items counted and done,
and a batch with any other outcome left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.delivery import _results
from mailsflux.delivery._smtpfast import enhanced_prefix
from mailsflux.delivery.bounce import find_enhanced_status
from mailsflux.delivery.scheduler import _Item, _result
from mailsflux.delivery.smtp import Outcome
from mailsflux.types import DeliveryResult, RenderedMessage

_texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda e, rest, pad: f"{pad}{e} {rest}{pad}",
        st.from_regex(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
        st.text(max_size=30),
        st.sampled_from(["", " ", "\r\n", "\t"]),
    ),
    st.text(min_size=490, max_size=620),
)
_outcomes = st.builds(
    Outcome,
    st.sampled_from(["delivered"] * 6 + ["deferred", "bounced"]),
    st.one_of(st.none(), st.integers(200, 599)),
    _texts,
    st.sampled_from(["eod", "rcpt", "data"]),
)
_items = st.builds(
    lambda rcpt, mid, row, attempts, done: _Item(
        RenderedMessage("s@example.org", rcpt, b"x", mid, row=row), 1.5, attempts, done
    ),
    st.text(max_size=20),
    st.text(max_size=10),
    st.integers(0, 2**40),
    st.integers(0, 5),
    st.booleans(),
)


def _copy(items: list[_Item]) -> list[_Item]:
    return [_Item(i.msg, i.first, i.attempts, i.done) for i in items]


def _python_delivered(batch: list[_Item], outcomes: list[Outcome]) -> list[DeliveryResult]:
    # Scheduler._delivered's loop before issue 17's compiled one.
    results = []
    for item, (_, code, text, _) in zip(batch, outcomes, strict=False):
        item.attempts += 1
        item.done = True
        results.append(
            _result(item, "delivered", code, text, find_enhanced_status(text), "delivered")
        )
    return results


def _state(items: list[_Item]) -> list[tuple[int, bool]]:
    return [(i.attempts, i.done) for i in items]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_items, max_size=12),
    st.lists(_outcomes, max_size=12),
    st.sampled_from([None, enhanced_prefix]),
)
def test_a_batch_settles_as_the_python_way(
    items: list[_Item], outcomes: list[Outcome], prefix: Callable[[str], str | None] | None
) -> None:
    assert _results.messages(items) == [i.msg for i in items]
    every = bool(outcomes) and all(o[0] == "delivered" for o in outcomes)
    assert _results.all_delivered(outcomes) is every
    if not every:
        return
    mine, theirs = _copy(items), _copy(items)
    got = _results.delivered(mine, outcomes, DeliveryResult, find_enhanced_status, prefix)
    want = _python_delivered(theirs, outcomes)
    assert [msgspec.structs.asdict(r) for r in got] == [msgspec.structs.asdict(r) for r in want]
    assert _state(mine) == _state(theirs)
    # Items past the outcomes (a batch cut short) are not touched.
    assert _state(mine[len(outcomes) :]) == _state(items[len(outcomes) :])


@settings(max_examples=100, deadline=None)
@given(st.lists(_items, min_size=1, max_size=6), st.lists(_outcomes, min_size=1, max_size=6))
def test_outcomes_that_are_not_tuples_give_the_same(
    items: list[_Item], outcomes: list[Outcome]
) -> None:
    # Outcome's items are read straight from the tuple; any other sequence
    # is indexed as before, with the same results.
    as_lists = [list(o) for o in outcomes]
    assert _results.all_delivered(as_lists) is _results.all_delivered(outcomes)
    if not _results.all_delivered(outcomes):
        return
    a, b = _copy(items), _copy(items)
    got = _results.delivered(a, as_lists, DeliveryResult, find_enhanced_status, None)
    want = _results.delivered(b, outcomes, DeliveryResult, find_enhanced_status, None)
    assert [msgspec.structs.asdict(r) for r in got] == [msgspec.structs.asdict(r) for r in want]


def test_a_reply_is_kept_stripped_and_cut_and_its_status_found() -> None:
    item = _Item(RenderedMessage("s@x.org", "r@y.org", b"", "m1", row=7), 0.0, 2)
    (r,) = _results.delivered(
        [item],
        [Outcome("delivered", 250, "  2.0.0 Ok: queued " + "x" * 600)],
        DeliveryResult,
        find_enhanced_status,
    )
    assert (r.recipient, r.message_id, r.status, r.code, r.row) == (
        "r@y.org",
        "m1",
        "delivered",
        250,
        7,
    )
    assert r.enhanced_status == "2.0.0" and r.category == "delivered"
    assert r.reply.startswith("2.0.0 Ok") and len(r.reply) == 500
    assert (item.attempts, item.done, r.attempts) == (3, True, 3)


def test_a_failure_on_the_way_leaves_every_item_as_it_was() -> None:
    items = [_Item(RenderedMessage("s@x.org", f"r{i}@y.org", b"", "m"), 0.0, 1) for i in range(3)]
    outcomes = [Outcome("delivered", 250, f"2.0.0 ok {i}") for i in range(3)]

    def enhanced(text: str) -> str | None:
        if text.endswith("1"):
            raise RuntimeError("the second one")
        return find_enhanced_status(text)

    with pytest.raises(RuntimeError, match="second"):
        _results.delivered(items, outcomes, DeliveryResult, enhanced)
    # Not counted nor done: the worker's fault path settles them.
    assert _state(items) == [(1, False)] * 3


def test_the_compiled_prefix_test_finds_what_the_search_finds() -> None:
    texts = ["2.0.0 Ok", "2.1.5 queued as X", " 2.0.0 padded", "Ok, no status", "2.10.0 two", ""]
    outcomes = [Outcome("delivered", 250, t) for t in texts]
    items = [
        _Item(RenderedMessage("s@x.org", f"r{i}@y.org", b"", "m"), 0.0) for i in range(len(texts))
    ]
    want = _python_delivered(_copy(items), outcomes)
    for prefix in (None, enhanced_prefix):
        got = _results.delivered(
            _copy(items), outcomes, DeliveryResult, find_enhanced_status, prefix
        )
        assert [r.enhanced_status for r in got] == [r.enhanced_status for r in want]
    assert [r.enhanced_status for r in want] == ["2.0.0", "2.1.5", "2.0.0", None, "2.10.0", None]
