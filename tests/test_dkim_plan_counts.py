"""The signing plan counts a message's fields for its h= list in one pass
(each field looked up among the names of its length), where it took one
pass over the fields a name. Its counts must be what ``Message.counts``
gives, name by name, for any fields and any counted names: names in any
case in the message, WSP before the colon, names of 64 characters or
more, the same name twice in the list, fields without a colon."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.dkim._canon import Message, SigningPlan
from mailsflux.dkim.signer import DEFAULT_HEADERS

_NAMES = [
    *(n.lower() for n in DEFAULT_HEADERS),
    "x",
    "x-a",
    "f" * 63,
    "f" * 64,
    "g" * 70,
    "received",
]


def _plan(counted: tuple[bytes, ...]) -> SigningPlan:
    return SigningPlan(counted, 0, lambda c: ((), b""), {}, None, b"", None, True, True, False)


def _field(name: str, upper: bool, space: str, colon: bool) -> bytes:
    name = name.upper() if upper else name
    return (name + space + (": v" if colon else "")).encode() + b"\r\n"


_fields = st.lists(
    st.builds(
        _field,
        st.sampled_from(_NAMES) | st.text(alphabet="abXY-", min_size=1, max_size=8),
        st.booleans(),
        st.sampled_from(["", " ", "\t"]),
        st.booleans() | st.just(True),
    ),
    max_size=20,
)
_counted = st.lists(
    st.sampled_from(_NAMES) | st.text(alphabet="abxy-", min_size=1, max_size=8), min_size=1
).map(lambda names: tuple(n.encode() for n in names))


@settings(max_examples=1500, deadline=None)
@given(_fields, _counted)
@example([b"From: a\r\n", b"FROM : b\r\n", b"to: c\r\n"], (b"from", b"to", b"from", b"cc"))
@example([b"F" * 64 + b": v\r\n", b"f" * 70 + b": v\r\n"], (b"f" * 64, b"g" * 70, b"f" * 70))
@example([b"Subject\r\n"], (b"subject",))
def test_one_pass_counts_what_each_name_counts(
    fields: list[bytes], counted: tuple[bytes, ...]
) -> None:
    msg = Message(b"".join(fields) + b"\r\nbody\r\n")
    assert _plan(counted).counts(msg) == msg.counts(counted)


def test_more_counted_names_than_the_small_array() -> None:
    counted = (*(b"x-%d" % i for i in range(40)), b"from")
    msg = Message(b"X-3: a\r\nx-39: b\r\nX-3: c\r\nFrom: d\r\n\r\nbody\r\n")
    got = _plan(counted).counts(msg)
    assert got == msg.counts(counted)
    assert got is not None and got[3] == 2 and got[39] == 1 and got[40] == 1
