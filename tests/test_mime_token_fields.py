"""The builder's Date, Message-ID and boundary token are checked against
their rules, restated here as what each may hold: Date 1 to 100 printable
ASCII characters; a Message-ID 3 to 250 of them, no space or angle
bracket, with an "@"; a boundary token up to 64 letters, digits and
"_-." (bchars of RFC 2046 5.1.1 that need no quoting in Content-Type). A
refused value gets one line naming its field, and an injection (CR, LF,
NUL) in a value of a valid length is named as such."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose._mimebuild import MessageBuilder
from mailsflux.errors import HeaderError, HeaderInjectionError

_BUILDER = MessageBuilder(sender="a@example.com")
_OK = {
    "to": "z@example.org",
    "subject": "Hi",
    "date": "Tue, 10 Mar 2026 10:00:00 +0000",
    "message_id": "x.1@example.com",
    "text": b"text",
}
_PRINTABLE = "".join(map(chr, range(32, 127)))
#: field, build argument, length bounds, the characters it may hold
_RULES = {
    "Date": ("date", 1, 100, _PRINTABLE),
    "Message-ID": (
        "message_id",
        3,
        250,
        _PRINTABLE.replace(" ", "").replace("<", "").replace(">", ""),
    ),
    "Content-Type": ("boundary", 0, 64, string.ascii_letters + string.digits + "_-."),
}


def _expected(field: str, value: str) -> type[Exception] | None:
    _, lo, hi, allowed = _RULES[field]
    if not lo <= len(value) <= hi:
        return HeaderError
    if any(c in "\r\n\x00" for c in value):
        return HeaderInjectionError
    if any(c not in allowed for c in value):
        return HeaderError
    if field == "Message-ID" and "@" not in value:
        return HeaderError
    return None


def _check(field: str, value: str) -> None:
    arg = _RULES[field][0]
    want = _expected(field, value)
    if want is None:
        data, _, _, _ = _BUILDER.build(**{**_OK, arg: value})
        assert isinstance(data, bytes)
        return
    with pytest.raises(HeaderError) as err:
        _BUILDER.build(**{**_OK, arg: value})
    assert type(err.value) is want, (field, value, err.value)
    assert err.value.field == field
    assert str(err.value).startswith(f"header {field}")


_values = st.text(
    alphabet=st.sampled_from(
        [*"aZ09._-=+@<> \t\r\n\x00\x1f\x7f\x80é例", *"!\"#$%&'()*,/:;?[\\]^`{|}~"]
    ),
    max_size=70,
) | st.integers(0, 300).map(lambda n: "a" * n + "@b")


def test_each_character_in_each_field() -> None:
    # One character of each kind (every ASCII one, and beyond) put into a
    # valid value of each field: the marks are decided one by one.
    valid = {"Date": "Tue, 10 Mar 2026", "Message-ID": "x.1@example.com", "Content-Type": "b1"}
    for field, value in valid.items():
        for c in [*map(chr, range(128)), "\x80", "é", "例"]:
            _check(field, c + value)
            _check(field, value + c)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(sorted(_RULES)), _values)
@example("Content-Type", "a" * 64)
@example("Content-Type", "a" * 65)
@example("Message-ID", "a" * 248 + "@b")
@example("Message-ID", "a" * 249 + "@b")
@example("Message-ID", "a\r\n@b")
@example("Date", "")
@example("Date", "\x7f")
@example("Date", "é")
def test_token_fields_follow_their_rules(field: str, value: str) -> None:
    _check(field, value)
