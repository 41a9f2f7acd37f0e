"""``bad_utf8`` answers as the plain search for an undecoded byte does, for
any text: ASCII, other text, surrogates of every range, and mixes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsflux.jobs.recipients import _UNDECODED, bad_utf8


def _reference(s: str) -> bool:
    return _UNDECODED.search(s) is not None


_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x7F),
        st.characters(min_codepoint=0x80, max_codepoint=0x2FF),
        # Surrogates: the undecoded bytes (U+DC80 to U+DCFF), drawn on their
        # own as well so that many examples hold one, and the others, which
        # do not encode either but are not an undecoded byte.
        # (Made from integers: text() built from characters() leaves
        # surrogates out, whatever categories are asked for.)
        st.integers(0xDC80, 0xDCFF).map(chr),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    ),
    max_size=40,
)


@settings(max_examples=3000, deadline=None)
@given(_TEXT)
def test_agrees_with_the_search(s: str) -> None:
    assert bad_utf8(s) is _reference(s)


def test_known_cases() -> None:
    assert bad_utf8("zoe@example.org") is False
    assert bad_utf8("Zoë Haddad") is False
    assert bad_utf8("caf\udce9") is True  # b"caf\\xe9" read with surrogateescape
    assert bad_utf8(b"Zo\xc3\xab \xff".decode("utf-8", "surrogateescape")) is True
    # A surrogate that is no undecoded byte is not counted as one.
    assert bad_utf8("x\ud800") is False
    assert bad_utf8("x\ud800\udc80") is True
