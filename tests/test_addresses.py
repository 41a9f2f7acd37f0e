"""Address checks: what is accepted, how it is encoded, what is refused and why."""

from __future__ import annotations

import pytest

from mailsflux.compose import parse_address, split_mailbox
from mailsflux.errors import AddressError


@pytest.mark.parametrize(
    ("text", "expected", "utf8"),
    [
        ("alice@example.com", "alice@example.com", False),
        ("Alice.Smith+tag@Example.COM", "Alice.Smith+tag@example.com", False),
        ("user@b\u00fccher.example", "user@xn--bcher-kva.example", False),
        ("j\u00f6rg@example.org", "j\u00f6rg@example.org", True),
        ("o'brien@example.net", "o'brien@example.net", False),
    ],
)
def test_accepted(text: str, expected: str, utf8: bool) -> None:
    a = parse_address(text)
    assert str(a) == expected
    assert a.smtputf8 is utf8


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("no-at-sign", "has no @$"),
        ("no-at.example.com", "has no @$"),
        ("@example.com", "no local part"),
        ("a..b@example.com", "invalid local part"),
        (".a@example.com", "invalid local part"),
        ("a b@example.com", "invalid local part"),
        ("a@localhost", "fully qualified"),
        ("a@-bad-.example", "invalid label"),
        ("a@exa_mple.com", "invalid label"),
        ("a@example.com\r\nBcc: b@example.com", "control character"),
        ("x" * 65 + "@example.com", "64 octets"),
    ],
)
def test_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(AddressError, match=why):
        parse_address(text)


def test_split_mailbox() -> None:
    assert split_mailbox("Northwind <hello@northwind.example>") == (
        "Northwind",
        "hello@northwind.example",
    )
    assert split_mailbox('"Doe, Jane" <j@example.com>') == ("Doe, Jane", "j@example.com")
    assert split_mailbox("bare@example.com") == ("", "bare@example.com")


@pytest.mark.parametrize(
    "text",
    [
        "a\u0085b@example.com",  # C1 control
        "a\u2028b@example.com",  # line separator
        "a\ud800@example.com",  # lone surrogate
        "a.@example.com",
        "a@exa..mple.com",
        "a@" + "x" * 64 + ".example",
        "a@" + ("x" * 60 + ".") * 5 + "example",
    ],
)
def test_more_refusals(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_idna_and_case() -> None:
    a = parse_address("  Zo\u00eb@M\u00fcnchen.Example.  ")
    assert (a.local, a.domain, a.smtputf8) == ("Zo\u00eb", "xn--mnchen-3ya.example", True)
    assert str(a) == "Zo\u00eb@xn--mnchen-3ya.example"
