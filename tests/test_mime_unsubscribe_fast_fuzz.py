"""The List-Unsubscribe shortcut (the usual ``<URI>, <URI>`` value, scanned
without regexes) writes byte for byte what the regex path writes, and
refuses what it refuses."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose import _mimebuild
from mailsflux.errors import MailsfluxError

line = _mimebuild.unsubscribe_line

_PIECES = st.sampled_from(
    [
        "<",
        ">",
        ", ",
        ",",
        " ",
        "\t",
        "https:",
        "http:",
        "mailto:",
        "u@e.com",
        "a",
        "Z9",
        ":",
        "+.-",
        "/u/k1.AA-_~",
        "?subject=unsubscribe-k1",
        "%20",
        "é",
        "\r",
        "\x00",
        "[]",
        "!#$&'()*;=@",
    ]
)
_URI = st.builds(
    "{}:{}".format,
    st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,6}", fullmatch=True),
    st.text(alphabet="abcXYZ09_.-~!#$%&'()*+,/:;=?@[] <>é", max_size=20),
)
_VALUES = st.one_of(
    st.lists(_URI.map("<{}>".format), min_size=1, max_size=3).map(", ".join),
    st.lists(_PIECES, max_size=14).map("".join),
    st.text(alphabet=st.characters(max_codepoint=0x300), max_size=30),
)


def _outcome(value: str, fast: bool) -> tuple[str, object]:
    try:
        return "ok", line(value, fast)
    except MailsfluxError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=4000, deadline=None)
@given(_VALUES)
@example("<https://t.example.com/u/k1.AAAA-_~>, <mailto:u@example.com?subject=unsubscribe-k1>")
@example("<mailto:u@example.com>")
@example("<https:x>")
@example("<https:>")
@example("<a:b>, ")
@example("<a:b>,<c:d>")
@example("<1a:b>")
@example("<a" + "b" * 900 + ":c>")
@example("<a" + "b" * 897 + ":c>")
@example("<ab:c>, <HTTPS://E>")
def test_shortcut_matches_regex_path(value: str) -> None:
    assert _outcome(value, True) == _outcome(value, False)


def test_shortcut_matches_regex_path_for_every_character() -> None:
    # The shortcut's table of characters quote() leaves as they are, checked
    # whole: a character it wrongly took would go out unencoded.
    for c in map(chr, range(1, 0x180)):
        for value in (
            f"<https://t.example/u/a{c}b>",
            f"<mailto:u@e.com?s={c}>, <https://t.example/{c}>",
        ):
            assert _outcome(value, True) == _outcome(value, False), repr(c)


def test_every_character_at_every_offset_of_a_long_uri() -> None:
    # The shortcut reads a URI sixteen characters a step while a block holds
    # only characters it keeps: each character, at each offset of two
    # blocks and the bytes after them, in the first URI and in the second.
    base = "https://t.example/u/" + "k1.AA-_~Z9%" * 4
    for c in map(chr, range(1, 0x180)):
        for at in range(8, 52):
            uri = base[:at] + c + base[at:]
            for value in (f"<{uri}>", f"<mailto:u@e.com>, <{uri}>"):
                assert _outcome(value, True) == _outcome(value, False), (repr(c), at)


def test_the_kept_characters_are_what_quote_leaves_alone() -> None:
    # Both paths take their characters from one string (_URI_KEPT): this
    # ties that string to quote() itself, which the regex path calls.
    for c in map(chr, range(0x180)):
        kept = _mimebuild._URI_UNCHANGED(c) is not None  # type: ignore[attr-defined]
        assert kept == (quote(c, safe=_mimebuild._URI_SAFE) == c), repr(c)


_BUILDER = _mimebuild.MessageBuilder(sender="a@example.com")


def _lines(value: str) -> tuple[str, object]:
    """The List-Unsubscribe lines of a message the one builder makes, as
    :func:`_outcome` gives them."""
    try:
        data, _, _, _ = _BUILDER.build(
            to="z@example.org",
            subject="s",
            date="d",
            message_id="m@x",
            text=b"t",
            list_unsubscribe=value,
        )
    except MailsfluxError as exc:
        return type(exc).__name__, str(exc)
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    start = head.index(b"List-Unsubscribe:")
    end = head.index(b"MIME-Version:")
    return "ok", head[start:end]


@settings(max_examples=500, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=6), st.lists(st.integers(0, 5), max_size=12))
def test_messages_carry_the_lines_of_their_own_value(values: list[str], picks: list[int]) -> None:
    # Values one after another, some again and again running (one for a
    # whole job, which the builder keeps as bytes) and some changing each
    # message (a tracked job's): each message has its own value's lines.
    for i in [0, 0, *picks, 0]:
        value = values[i % len(values)]
        assert _lines(value) == _outcome(value, True), value
