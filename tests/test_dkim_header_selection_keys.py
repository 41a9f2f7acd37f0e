"""Which fields a signature's ``h=`` names select (RFC 6376 section 5.4.2:
each name takes the last field of that name not yet taken), now that each
field is first compared by a key (its name's length and first byte) and in
full only where the key is the name's: against a plain model, with names that
share a length or a first byte, names in any case, WSP before the colon,
fields without a colon, empty names, and more than 64 fields (the keys then
live in a heap array)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.dkim._canon import Message
from tests.test_dkim_fuzz import ref_selected

# Same length, same first byte, or both: only a full compare tells them apart.
_NAMES = [b"to", b"tx", b"cc", b"from", b"frog", b"From", b"FROM", b"date", b"dare", b"x", b"",
          b"subject", b"Subject", b"sender"]  # fmt: skip


def _raw(name: bytes, space: bytes, colon: bool, i: int) -> bytes:
    return name + space + (b": v%d" % i if colon else b"")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_NAMES), st.sampled_from([b"", b" ", b"\t"]), st.booleans()).map(
            # An empty name is a line that starts with its colon: with WSP
            # first it would continue the field before, with no colon it
            # would end the header.
            lambda t: t if t[0] else (b"", b"", True)
        ),
        max_size=150,
    ),
    st.lists(st.sampled_from([n.lower() for n in _NAMES] + [b"absent"]), max_size=30),
    st.booleans(),
)
@example([(b"From", b"", True)] * 70 + [(b"to", b"", True)], [b"from", b"to", b"from"], True)
def test_selection_matches_the_model(
    fields: list[tuple[bytes, bytes, bool]], h: list[bytes], relaxed: bool
) -> None:
    raw = [_raw(name, space, colon, i) for i, (name, space, colon) in enumerate(fields)]
    msg = Message(b"".join(r + b"\r\n" for r in raw) + b"\r\nbody\r\n")
    if msg.header_count != len(raw):
        return  # an empty first line ends the header (a field of nothing)
    names = [name.lower() if colon else None for name, _, colon in fields]
    assert msg.header_hash_input(tuple(h), relaxed) == ref_selected(raw, names, h, relaxed)
