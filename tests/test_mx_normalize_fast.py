"""``normalize_domain`` gives plain ASCII names back without dnspython (a
relay send never imports it now): for every input it must answer what
dnspython's own reading answers, the accepted form or the refusal."""

from __future__ import annotations

import dns.exception
import dns.name
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.delivery.mx import _LABELS, PermanentRoutingError, normalize_domain

_label = st.one_of(
    st.text(st.sampled_from("abcXYZ09-_\u212a"), min_size=0, max_size=70),
    st.sampled_from(
        ["xn--bcher-kva", "XN--BCHER-KVA", "bücher", "a" * 63, "a" * 64, "-a", "a\\065"]
    ),
)
_name = st.builds(
    lambda labels, dot, pad: pad + ".".join(labels) + dot + pad,
    st.lists(_label, min_size=1, max_size=6),
    st.sampled_from(["", ".", ".."]),
    st.sampled_from(["", " ", "\t", "\n"]),
)


def _by_dnspython(text: str) -> str | None:
    """What normalize_domain answered before its fast path: dnspython's form
    (address literals, "[...]", are read apart: compared as they are)."""
    if text.strip().startswith("[") and text.strip().endswith("]"):
        return _answer(text)
    text = text.strip().rstrip(".")
    idna = dns.name.IDNA_2008_Practical if dns.name.have_idna_2008 else dns.name.IDNA_2003
    try:
        if not text or "@" in text:
            return None
        name = dns.name.from_text(text, origin=dns.name.root, idna_codec=idna)
        form = name.to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return None
    if not _LABELS.match(form) or ("." not in form and form != "localhost"):
        return None
    return form


def _answer(text: str) -> str | None:
    try:
        return normalize_domain(text)
    except PermanentRoutingError:
        return None


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_name, st.text(max_size=40)))
@example("Example.ORG.")
@example("a" * 63 + ".org")
@example("a" * 64 + ".org")  # a label too long: dnspython refuses it
@example(".".join(["abcdefghi"] * 25) + ".org")  # 253 and more in all
@example("_dmarc.example.org")
@example("localhost")
@example("exa mple.org")
@example("example.org\n.")  # a line end inside: "$" alone would let it through
@example("_\u212a.example.com")  # the Kelvin sign lowers to "k"; IDNA refuses "_K"
@example("ab--\u212a.example.com")
@example("\u212aelvin.example.com")  # IDNA maps it to "k": accepted as "kelvin"
@example("[::]")
def test_fast_path_answers_as_dnspython(text: str) -> None:
    assert _answer(text) == _by_dnspython(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Example.ORG.", "example.org"),
        ("mail_x.Example.org", "mail_x.example.org"),
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("a" * 63 + ".org", "a" * 63 + ".org"),
        ("a" * 64 + ".org", None),
        ("x." * 126 + "org", None),  # 255 characters: too long for DNS
        ("-bad.example", None),
        ("example", None),
        ("example.org\n.", None),
        ("example.org\n", "example.org"),  # stripped, as any whitespace around it
        ("_\u212a.example.com", None),
        ("\u212aelvin.Example.com", "kelvin.example.com"),
    ],
)
def test_known_answers(text: str, want: str | None) -> None:
    assert _answer(text) == want
