"""Relaxed canonicalization of the header fields a signature covers reads
sixteen-byte blocks (the name lowercased, the value copied) that may run past
a field's end into the rest of its message (core/mailsflux/dkim/_canon.pyx,
_header_relaxed). Each field of a message, its name and value at every
alignment, the message ending right after its last field or not, against the
RFC-text reference of test_dkim_fuzz.py; the block tests themselves are in
test_simd_blocks.py."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.dkim import _canon
from tests.test_dkim_fuzz import ref_relaxed_header, ref_selected

_NAMES = st.sampled_from(
    [b"From", b"TO", b"Subject", b"List-Unsubscribe-Post", b"X-A",
     b"X-VERY-LONG-HEADER-NAME-ABCDEF", b"Content-Transfer-Encoding", b"from ", b"X-\xc1\xdaZ",
     b"DKIM-Signature\t", b"Ab@[Z`a{"]
)  # fmt: skip
_VALUE_PIECES = st.sampled_from(
    [b" ", b"\t", b"  ", b"a", b"Zz", b"x y", b"\xc3\xa9", b";", b":", b"\r\n ", b"\r\n\t",
     b"0123456789abcdef", b"\x00", b"\x7f"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.tuples(_NAMES, st.lists(_VALUE_PIECES, max_size=12).map(b"".join)), max_size=8),
    st.integers(0, 15),
    st.sampled_from([b"\r\nbody\r\n", b"\r\n", b""]),
)
def test_fields_in_a_message_match_the_reference(
    fields: list[tuple[bytes, bytes]], shift: int, rest: bytes
) -> None:
    # The first field's name is lengthened by ``shift`` so names and values
    # start at every offset of a block; the message may end right after its
    # last field (``rest`` empty), so its blocks run out of message there.
    if fields:
        fields[0] = (b"X" * shift + fields[0][0], fields[0][1])
    raw = [name + b":" + value for name, value in fields]
    message = b"".join(f + b"\r\n" for f in raw) + rest
    msg = _canon.Message(message)
    if msg.header_count != len(raw):
        return  # a value's fold made another field or ended the header
    names = tuple(dict.fromkeys(r.partition(b":")[0].rstrip(b" \t").lower() for r in raw))
    of: list[bytes | None] = [r.partition(b":")[0].rstrip(b" \t").lower() for r in raw]
    expected = ref_selected(raw, of, names)
    assert msg.header_hash_input(names, True) == expected
    signature = b"DKIM-Signature: v=1; b="
    assert msg.header_hash_input(names, True, signature) == expected + ref_relaxed_header(signature)
