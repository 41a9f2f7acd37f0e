"""The MTA-STS TXT record and policy file (RFC 8461 3.1, 3.2, 4.1), parsed."""

from __future__ import annotations

import pytest

from mailsflux.delivery.mtasts import parse_policy, parse_txt
from mailsflux.errors import PolicyError


def test_txt_record() -> None:
    assert parse_txt([b"v=STSv1; id=20160831085700Z;"]) == "20160831085700Z"
    assert parse_txt([b"v=STSv1;", b" id=abc"]) == "abc"  # strings are joined
    assert parse_txt([b"v=STSv2; id=1"]) is None
    assert parse_txt([b"v=spf1 -all"]) is None
    assert parse_txt([b"v=STSv1; id=not-alnum"]) is None


def test_policy_fields_and_wildcards() -> None:
    body = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET\r\n"
    p = parse_policy(body + "max_age: 604800\r\n", "1", 0.0)
    assert (p.mode, p.mx, p.max_age) == ("enforce", ("mail.example.com", "*.example.net"), 604800)
    assert p.allows("MAIL.example.com.")
    assert p.allows("mx1.example.net")
    assert not p.allows("example.net")  # the wildcard is one label, never none
    assert not p.allows("a.b.example.net")  # ... and never two
    assert not p.allows("other.example.com")
    # max_age is capped at a year.
    assert parse_policy(body + "max_age: 4000000000\n", "1", 0.0).max_age == 31_557_600


@pytest.mark.parametrize(
    "body",
    [
        "mode: enforce\nmx: a.example\nmax_age: 1\n",  # no version
        "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: soon\n",
    ],
)
def test_bad_policies_are_refused(body: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(body, "1", 0.0)
