"""The pure parts of the outbound authentication check: reserved names, tags,
organizational domains and alignment, and the records it asks for."""

from __future__ import annotations

import pytest

from mailsflux.authcheck.records import (
    aligned,
    dmarc_record,
    local_address,
    organizational_domain,
    reserved,
    spf_record,
    tags,
)


@pytest.mark.parametrize(
    "domain",
    [
        "example.com",
        "news.example.org",
        "EXAMPLE.NET.",
        "shop.example",
        "a.test",
        "x.invalid",
        "localhost",
        "mail.localhost",
    ],
)
def test_reserved_names_cannot_publish(domain: str) -> None:
    assert reserved(domain)


@pytest.mark.parametrize("domain", ["example.co.uk", "myexample.com", "test.com", "example"])
def test_other_names_are_checked(domain: str) -> None:
    assert not reserved(domain) or domain == "example"


def test_tags_trim_and_keep_the_first() -> None:
    assert tags(" v=DMARC1 ; p = reject;adkim=s; bad; p=none ") == {
        "v": "DMARC1",
        "p": "reject",
        "adkim": "s",
    }


def test_organizational_domain_follows_the_public_suffix_list() -> None:
    assert organizational_domain("mail.news.northwind.co.uk") == "northwind.co.uk"
    assert organizational_domain("a.b.shop.com") == "shop.com"
    assert organizational_domain("co.uk") == "co.uk"


def test_alignment_modes() -> None:
    assert aligned("shop.com", "mail.shop.com", "r")
    assert not aligned("shop.com", "mail.shop.com", "s")
    assert aligned("SHOP.com", "shop.com.", "s")
    assert not aligned("a.co.uk", "b.co.uk", "r")


def test_spf_record_adds_addresses_to_an_existing_one() -> None:
    r = spf_record("shop.com", "v=spf1 include:_spf.host.net ~all", ["203.0.113.9", "2001:db8::9"])
    assert (r.name, r.type) == ("shop.com", "TXT")
    assert r.value == "v=spf1 ip4:203.0.113.9 ip6:2001:db8::9 include:_spf.host.net ~all"
    assert spf_record("shop.com", None, ["203.0.113.9"]).value == "v=spf1 ip4:203.0.113.9 -all"


def test_dmarc_record_relaxes_an_existing_policy() -> None:
    r = dmarc_record("shop.com", {"v": "DMARC1", "p": "reject", "adkim": "s"})
    assert str(r) == '_dmarc.shop.com TXT "v=DMARC1; p=reject; adkim=r"'


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.5", True),
        ("::1", True),
        ("fd00::1", True),
        ("203.0.113.25", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
    ],
)
def test_which_relay_addresses_are_local(address: str, local: bool) -> None:
    assert local_address(address) is local
