"""The MTA-STS TXT record and policy file (RFC 8461 3.1, 3.2, 4.1), parsed."""

from __future__ import annotations

import pytest

from mailsflux.delivery.mtasts import parse_policy, parse_txt, sts_id
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
        # str.isdigit() takes these, int() does not: never a ValueError escaping.
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: \u00b2\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: \u0661\u0662\n",
    ],
)
def test_bad_policies_are_refused(body: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(body, "1", 0.0)


def test_txt_rrset_needs_exactly_one_sts_record() -> None:
    """3.1: records not starting with v=STSv1 are discarded; unless exactly
    one remains there is no policy, even if the others have no valid id."""
    assert sts_id([[b"v=spf1 -all"], [b"v=STSv1; id=abc"]]) == "abc"
    assert sts_id([[b"v=STSv1; id=abc"], [b"v=STSv1; id=not-valid!"]]) is None
    assert sts_id([[b"v=STSv1; id=abc"], [b"v=STSv1; id=def"]]) is None
    assert sts_id([[b"v=spf1 -all"]]) is None
    # The grammar (3.1) has no space around "=": not an MTA-STS record.
    assert parse_txt([b"v = STSv1; id=abc"]) is None
    assert parse_txt([b"v=STSv10; id=abc"]) is None
    assert parse_txt([b"v=STSv1; id=\xd9\xa1"]) is None  # non-ASCII digits


def test_policy_lines_end_only_in_lf_or_crlf() -> None:
    """3.2: a NEL (U+0085) or other Unicode line break inside a value does
    not start a new key, so it cannot smuggle in an mx pattern."""
    body = "version: STSv1\nmode: enforce\x85mx: evil.example\nmx: a.example\nmax_age: 1\n"
    with pytest.raises(PolicyError):
        parse_policy(body, "1", 0.0)  # the mode is "enforce\x85mx: evil.example"
    body = "version: STSv1\r\nmode: testing\r\nmx: a.example\u2028mx: b.example\r\nmax_age: 1"
    assert parse_policy(body, "1", 0.0).mx == ("a.example\u2028mx: b.example",)
