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

_SPACE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # str.strip()'s ASCII white space
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(
    rf"[{re.escape(_SPACE)}]*(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)"
    rf"@(?P<domain>{_LABEL}(?:\.{_LABEL})+)\.*[{re.escape(_SPACE)}]*",
)


def _plain(text: str) -> tuple[str, str] | None:
    """The reference: what a plain address gives, by the regex."""
    m = _PLAIN.fullmatch(text)
    if m is None or len(m["local"]) > 64 or len(m["domain"]) > 253:
        return None
    local, domain = m["local"], m["domain"].lower()
    return f"{local}@{domain}", f"{local.lower()}@{domain}"


_PIECES = [
    *'a Z 0 9 . .. - _ + ! ~ ` { @ @@ " ( ) , [ ] \\ é ß Σ 例 xn--'.split(),
    *(" ", "\t", "\x00", "\x7f", "\r\n", "\x1c", "\x0b"),
]
_piece = st.sampled_from(_PIECES)
_local = st.lists(st.one_of(_piece, st.from_regex(_ATEXT, fullmatch=True)), max_size=12)
_label = st.one_of(
    st.from_regex(_LABEL, fullmatch=True),
    st.sampled_from(["-a", "a-", "", "a_b", "é", "BÜCHER", "xn--bcher-kva", "a" * 63, "a" * 64]),
)
_text = st.builds(
    lambda pre, local, labels, dots, post: (
        pre + "".join(local) + "@" + ".".join(labels) + "." * dots + post
    ),
    st.text(alphabet=_SPACE, max_size=2),
    _local,
    st.lists(_label, min_size=1, max_size=5),
    st.integers(0, 2),
    st.text(alphabet=_SPACE + "é", max_size=2),
)


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
