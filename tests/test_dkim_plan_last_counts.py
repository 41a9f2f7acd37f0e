"""The signing plan keeps the last message's field counts and their
``(names, h)``, so the next message with the same counts skips the lookup.
Whatever the order of messages, each must be prepared exactly as a plan that
has seen no other message prepares it: its own counts' h= and names, its
own hash input; and ``h_for`` is asked again for counts it gave before only
when they are not the last ones (its cache here is left empty, so every miss
reaches it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.dkim._canon import Message, SigningPlan

_COUNTED = (b"from", b"to", b"cc", b"subject", b"reply-to")
_KINDS = [
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n",
    b"From: a@example.com\r\nTo: b@example.com\r\nCc: c@example.com\r\nSubject: s\r\n",
    b"From: a@example.com\r\nTo: b@example.com\r\nTo: d@example.com\r\n",
    b"To: b@example.com\r\nSubject: no from\r\n",  # no From: not signed
    b"FROM : a@example.com\r\nReply-To: r@example.com\r\nSubject: t\r\n",
    # The first kind with one more field, counted last: only the last count differs.
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nReply-To: r@example.com\r\n",
]


def _plan(asked: list[tuple[int, ...]]) -> SigningPlan:
    def h_for(counts: tuple[int, ...]) -> tuple[tuple[bytes, ...], bytes]:
        asked.append(counts)
        names = tuple(n for n, c in zip(_COUNTED, counts, strict=True) for _ in range(c))
        return names, b":".join(names) + b"|" + b",".join(b"%d" % c for c in counts)

    return SigningPlan(
        _COUNTED, 0, h_for, {}, None, b"DKIM-Signature: v=1; t=", None, True, True, False
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(_KINDS) - 1), max_size=12))
def test_each_message_prepared_as_alone(order: list[int]) -> None:
    asked: list[tuple[int, ...]] = []
    plan = _plan(asked)
    last: tuple[int, ...] | None = None
    for i, kind in enumerate(order):
        msg = Message(_KINDS[kind] + b"\r\nbody\r\n")
        counts = msg.counts(_COUNTED)
        alone = _plan([]).prepare(Message(msg.data), 1700000000 + i)
        before = len(asked)
        got = plan.prepare(msg, 1700000000 + i)
        assert got == alone
        if counts[0] == 0:  # no From
            assert got is None
            assert len(asked) == before
            continue
        want_h = b",".join(b"%d" % c for c in counts)
        assert got is not None and got[0].split(b"|")[1].startswith(want_h)
        # Asked again only when these are not the last counts.
        assert len(asked) == before + (counts != last)
        if counts != last:
            assert asked[-1] == counts
        last = counts
