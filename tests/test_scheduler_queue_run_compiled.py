"""A run of messages queued in compiled code is what the scheduler's loop queued (issue 17).

``mailsflux.delivery._enqueue.queue_run`` appends the messages bound for the
queue the message before went to. Random batches (domains in any case,
with and without an "@", looked up before or looked up from the run,
routed to this queue, another, or nowhere, with this queue's TLS policy,
another or none) go through it and through the loop of
``Scheduler._place_cached`` for the same queue, kept here: the same items
appended, the same domains looked up in the same order, and the same first
message left over.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.delivery._enqueue import queue_run, take
from mailsflux.delivery.scheduler import _Item
from mailsflux.types import RenderedMessage

KEY = "relay:25"
TLS = object()  # this queue's policy
OTHER_TLS = object()

_domains = st.sampled_from(["a.example", "B.Example", "c.example", "ünï.example", "İ.tr", ""])
_msgs = st.lists(
    st.builds(
        lambda local, domain, at: RenderedMessage("s@x.org", f"{local}{at}{domain}", b"", "m"),
        st.sampled_from(["u", "v@w", ""]),
        _domains,
        st.sampled_from(["@", "@", ""]),
    ),
    max_size=12,
)
_hits = st.one_of(
    st.none(),
    st.tuples(
        st.just("route"),
        st.sampled_from([None, TLS, OTHER_TLS]),
        st.sampled_from([KEY, "other:25"]),
    ),
)
_routes = st.dictionaries(
    st.sampled_from(["a.example", "b.example", "c.example", "ünï.example", "i̇.tr", ""]),
    _hits,
)


class _Lookups:
    """``look(routes, domain)``: what the scheduler's cache says (``cache``),
    entered in ``routes``; each domain asked recorded."""

    def __init__(self, cache: dict[str, Any]) -> None:
        self.cache = cache
        self.asked: list[str] = []

    def __call__(self, routes: dict[str, Any], domain: str) -> Any:
        self.asked.append(domain)
        hit = routes[domain] = self.cache.get(domain)
        return hit


def _python_run(
    msgs: list[RenderedMessage],
    i: int,
    stop: int,
    routes: dict[str, Any],
    queue: deque[_Item],
    look: _Lookups,
) -> int:
    # _place_cached's loop for messages bound for the queue it just used,
    # a domain not yet looked up in this batch looked up first.
    while i < stop:
        msg = msgs[i]
        if msg.domain not in routes:
            look(routes, msg.domain)
        hit = routes[msg.domain]
        if hit is None or not (hit[2] == KEY and (hit[1] is None or hit[1] is TLS)):
            break
        queue.append(_Item(msg, 7.0))
        i += 1
    return i


@settings(max_examples=500, deadline=None)
@given(_msgs, _routes, _routes, st.integers(0, 12), st.integers(0, 14))
def test_a_run_is_what_the_loop_queued(
    msgs: list[RenderedMessage],
    routes: dict[str, Any],
    cache: dict[str, Any],
    start: int,
    stop: int,
) -> None:
    start = min(start, len(msgs))
    stop = min(stop, len(msgs))
    mine: deque[_Item] = deque([_Item(RenderedMessage("", "", b"", "first"), 0.0)])
    theirs: deque[_Item] = deque(mine)
    my_routes, their_routes = dict(routes), dict(routes)
    my_look, their_look = _Lookups(cache), _Lookups(cache)
    got = queue_run(msgs, start, stop, my_routes, KEY, TLS, mine, _Item, 7.0, my_look)
    assert got == _python_run(msgs, start, stop, their_routes, theirs, their_look)
    assert my_look.asked == their_look.asked
    assert my_routes == their_routes
    assert [(x.msg, x.first, x.attempts, x.done) for x in mine] == [
        (x.msg, x.first, x.attempts, x.done) for x in theirs
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=10), st.integers(-2, 12))
def test_take_is_what_the_scheduler_took(done: list[bool], n: int) -> None:
    msgs = [RenderedMessage("", f"r{i}@x.org", b"", "m") for i in range(len(done))]
    items = [_Item(m, 0.0, 0, d) for m, d in zip(msgs, done, strict=True)]
    mine, theirs = deque(items), deque(_Item(i.msg, i.first, i.attempts, i.done) for i in items)
    got = take(mine, n)
    want = [theirs.popleft() for _ in range(min(n, len(theirs)))]
    for item in want:
        item.done = False
    assert [(i.msg, i.done) for i in got] == [(i.msg, i.done) for i in want]
    assert [i.msg for i in mine] == [i.msg for i in theirs]
    assert got == items[: len(got)]  # the items themselves, not copies
