"""List-Unsubscribe URIs skip percent-encoding when it would change nothing:
the shortcut's pattern must take only strings that ``quote`` leaves alone."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.compose import MessageBuilder, _mimebuild

SAFE = _mimebuild._URI_SAFE
unchanged = _mimebuild._URI_UNCHANGED


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=40))
@example("https://t.example.com/u/k1.AAAA-_~")
@example("mailto:u@example.com?subject=unsubscribe%20k1.AAAA")
@example("https://e.com/a b")
@example("https://e.com/é")
@example('https://e.com/"<>^`{|}\\')
def test_shortcut_only_for_what_quote_leaves_alone(u: str) -> None:
    if unchanged(u) is not None:
        assert quote(u, safe=SAFE) == u


def test_header_still_percent_encodes() -> None:
    b = MessageBuilder(sender="a@example.com")
    raw = b.build(
        to="r@example.net",
        subject="s",
        date="Thu, 01 Jan 2026 00:00:00 +0000",
        message_id="m@example.com",
        text=b"x",
        list_unsubscribe="<https://e.com/u/k1.AA>, <https://e.com/a b/é>",
    )[0]
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")
    assert b"<https://e.com/u/k1.AA>, <https://e.com/a%20b/%C3%A9>" in head
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
