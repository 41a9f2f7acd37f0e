"""``plain_address`` (compiled): the address and key of a plain ASCII
address without an Address made. The reader takes them for every row, so
they must be exactly what ``parse_address`` and ``Address.key()`` give, and
every other text must be left to ``parse_address``.

Two references: ``parse_address`` itself, and an independent regular
expression of "plain" (RFC 5322 dot-atom, RFC 1034 labels, ASCII white
space at either end, final dots), which must be taken on the fast path.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose._mimebuild import parse_address, plain_address
from mailsflux.errors import AddressError
from tests._addresses import ATEXT, SPACE, address_texts

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(
    rf"[{re.escape(SPACE)}]*(?P<local>{ATEXT}+(?:\.{ATEXT}+)*)"
    rf"@(?P<domain>{_LABEL}(?:\.{_LABEL})+)\.*[{re.escape(SPACE)}]*",
)


def _plain(text: str) -> tuple[str, str] | None:
    """The reference: what a plain address gives, by the regex."""
    m = _PLAIN.fullmatch(text)
    if m is None or len(m["local"]) > 64 or len(m["domain"]) > 253:
        return None
    local, domain = m["local"], m["domain"].lower()
    return f"{local}@{domain}", f"{local.lower()}@{domain}"


_text = address_texts(_LABEL, [], 2)


def _check(text: str) -> None:
    got = plain_address(text)
    try:
        a = parse_address(text)
    except AddressError:
        assert got is None, (text, got)
        return
    assert got is None or got == (str(a), a.key()), (text, got)
    assert got == _plain(text), (text, got)


@settings(max_examples=3000, deadline=None)
@given(_text)
@example("Zoe.0@Example0.ORG")
@example(" \t a.b+c@sub.Example.com.. \x1f")
@example("a" * 64 + "@example.org")
@example("a" * 65 + "@example.org")
@example("a@" + ".".join(["a" * 63] * 3) + ".b" * 31)  # a domain of 253 characters
@example("a@" + ".".join(["a" * 63] * 3) + ".b" * 30 + ".bb")  # 254
@example("a@b@example.org")
@example("@example.org")
@example("a@example")
@example("a@ example.org")
@example("é@example.org")
def test_plain_address_is_parse_address_or_none(text: str) -> None:
    _check(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_parse_address_or_none(text: str) -> None:
    _check(text)
