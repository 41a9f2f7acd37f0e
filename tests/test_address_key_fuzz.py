"""``Address.key()`` (compiled) is ``normalize_address(str(address))`` for
every address ``parse_address`` accepts: the reader's duplicate check now
takes the one and suppression lists the other, so they must never differ."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose import normalize_address, parse_address
from mailsflux.errors import AddressError

_local = st.lists(
    st.one_of(
        st.sampled_from("abcXYZ019.!#$%&'*+-/=?^_`{|}~"),
        st.characters(min_codepoint=0xA0),  # non-ASCII local parts (RFC 6532)
        st.sampled_from(["\u0041\u030a", "\u00c5", "\u212b", "Σ", "ß", "İ"]),  # NFC, case
    ),
    min_size=1,
    max_size=20,
).map("".join)
_label = st.one_of(
    st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True),
    st.sampled_from(["bücher", "BÜCHER", "xn--bcher-kva", "παράδειγμα", "ΣΑΣ", "例え"]),
)
_domain = st.lists(_label, min_size=2, max_size=4).map(".".join)


@settings(max_examples=400, deadline=None)
@given(local=_local, domain=_domain, space=st.sampled_from(["", " ", "\t"]), dot=st.booleans())
@example(local="Zoë", domain="Bücher.Example", space=" ", dot=True)
@example(local="A\u030angstr\u00f6m", domain="example.org", space="", dot=False)
def test_key_is_normalize_address_of_the_address(
    local: str, domain: str, space: str, dot: bool
) -> None:
    text = f"{space}{local}@{domain}{'.' if dot else ''}{space}"
    try:
        addr = parse_address(text)
    except AddressError:
        return
    assert addr.key() == normalize_address(str(addr)) == normalize_address(text)
