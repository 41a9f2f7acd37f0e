"""Address texts for the fuzz tests of the address shortcuts: a plain
address's pieces (RFC 5322 atext, RFC 1034 labels) mixed with what makes
an address not plain (white space, quotes, non-ASCII, bad labels)."""

from __future__ import annotations

from hypothesis import strategies as st

#: What str.strip() takes off an ASCII string.
SPACE = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
#: RFC 5322 3.2.3 atext, one character.
ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]"

_PIECES = [
    *'a Z 0 9 . .. - _ + ! ~ ` { @ @@ " ( ) , [ ] \\ é ß Σ 例 xn--'.split(),
    *(" ", "\t", "\x00", "\x7f", "\r\n", "\x1c", "\x0b"),
]
_BAD_LABELS = ["-a", "a-", "", "a_b", "é", "BÜCHER", "xn--bcher-kva", "a" * 63, "a" * 64]


def address_texts(label: str, labels: list[str], parts: int) -> st.SearchStrategy[str]:
    """Texts of white space, a local part, "@", one to five labels (matching
    ``label``, a regex, or one of ``labels`` and the bad ones), final dots
    and white space (up to ``parts`` of each)."""
    local = st.lists(
        st.one_of(st.sampled_from(_PIECES), st.from_regex(ATEXT, fullmatch=True)), max_size=12
    )
    one = st.one_of(st.from_regex(label, fullmatch=True), st.sampled_from(_BAD_LABELS + labels))
    return st.builds(
        lambda pre, loc, ls, dots, post: (
            pre + "".join(loc) + "@" + ".".join(ls) + "." * dots + post
        ),
        st.text(alphabet=SPACE, max_size=parts),
        local,
        st.lists(one, min_size=1, max_size=5),
        st.integers(0, parts),
        st.text(alphabet=SPACE + "é", max_size=parts),
    )
