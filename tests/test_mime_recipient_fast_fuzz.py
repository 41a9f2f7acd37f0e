"""The To line of a message: an address already in the form the parser
gives back (plain ASCII, nothing to strip, its domain in lower case; what
the reader hands on for most rows) goes out without being parsed again.
For any address and display name, the line, the RCPT TO address, the
SMTPUTF8 flag, and any error, are exactly what parsing every address gives.

An independent regular expression says which addresses are in that form:
those, and only those, must take the shortcut (the address comes back as
the very object given, where the parser makes a new string).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose._mimebuild import recipient_line
from mailsflux.errors import MailsfluxError
from tests._addresses import ATEXT, address_texts

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"  # lower case only
_CANONICAL = re.compile(rf"(?P<local>{ATEXT}+(?:\.{ATEXT}+)*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")


def _canonical(text: str) -> bool:
    m = _CANONICAL.fullmatch(text)
    return m is not None and len(m["local"]) <= 64 and len(m["domain"]) <= 253


def _outcome(display: str, address: str, fast: bool) -> object:
    try:
        return recipient_line(display, address, fast)
    except MailsfluxError as exc:
        return (type(exc), str(exc), getattr(exc, "field", None))


_address = address_texts(_LABEL, ["A", "Example"], 1)
_display = st.one_of(
    st.sampled_from(["", "Zoe", "Zoé Example", "Doe, John", '"Quoted"', " spaced ", "a\r\nb"]),
    st.text(max_size=30),
)


def _check(display: str, address: str) -> None:
    fast, slow = _outcome(display, address, True), _outcome(display, address, False)
    assert fast == slow, (display, address, fast, slow)
    if type(fast) is tuple and type(fast[0]) is bytes:
        # the shortcut hands back the very object; parsing makes a new one
        assert (fast[1] is address) == _canonical(address), (address, fast)


@settings(max_examples=3000, deadline=None)
@given(_display, _address)
@example("", "zoe@example.org")
@example("Zoe", "Zoe.0@example.org")
@example("", "zoe@Example.org")  # parsed: the domain is lowered
@example("", "zoe@example.org.")  # parsed: the final dot goes
@example("", " zoe@example.org")  # parsed: stripped
@example("a\r\nb", "zoe@example.org")  # the display name refused either way
@example("", "a" * 64 + "@example.org")
@example("", "a" * 65 + "@example.org")
@example("", "a@" + ".".join(["a" * 63] * 3) + ".b" * 31)  # a domain of 253 characters
@example("", "a@" + ".".join(["a" * 63] * 3) + ".b" * 30 + ".bb")  # 254
def test_the_shortcut_writes_what_parsing_writes(display: str, address: str) -> None:
    _check(display, address)


@pytest.mark.parametrize(
    ("display", "address", "line"),
    [
        ("", "zoe@example.org", b"To: zoe@example.org\r\n"),
        ("Zoe", "Zoe@example.org", b"To: Zoe <Zoe@example.org>\r\n"),
        ("Doe, John", "j@example.org", b'To: "Doe, John" <j@example.org>\r\n'),
        ("Zoé", "z@example.org", b"To: =?utf-8?b?Wm/DqQ==?=\r\n <z@example.org>\r\n"),
    ],
)
def test_lines(display: str, address: str, line: bytes) -> None:
    got = recipient_line(display, address)
    assert got == (line, address, False)
    assert got[1] is address
