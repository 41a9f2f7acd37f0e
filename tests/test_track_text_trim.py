"""Trimming a text-part URL's end: linear in its length, same result as before.

The old trimmer recounted the brackets of the whole URL for every character
it dropped, so a URL followed by many ``)`` took quadratic time: a million
of them would run for hours, far past the pytest timeout.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking import Tracker
from mailsflux.tracking.tracker import _trim

_TRAILING = ".,;:!?"


def reference_trim(url: str) -> str:
    """The trimmer as it was (quadratic), kept as the specification."""
    while url:
        c = url[-1]
        if c in _TRAILING:
            url = url[:-1]
        elif c == ")" and url.count("(") < url.count(")"):
            url = url[:-1]
        elif c == "]" and url.count("[") < url.count("]"):
            url = url[:-1]
        else:
            break
    return url


urls = st.lists(st.sampled_from(list("()[]" + _TRAILING + "ax/")), max_size=40).map(
    lambda parts: "https://e.com/" + "".join(parts)
)


@settings(max_examples=3000, deadline=None)
@given(urls)
@example("https://en.wikipedia.org/wiki/Foo_(bar))")
@example("https://e.com/[a](b)]).")
@example("https://e.com/((x)")
@example("")
def test_same_result_as_before(url: str) -> None:
    assert _trim(url) == reference_trim(url)


def test_a_million_closing_brackets_finish() -> None:
    n = 1_000_000
    url = "https://e.com/x(y)" + ")" * n
    assert _trim(url) == "https://e.com/x(y)"
    t = Tracker("https://t.example.com", {"k1": b"k" * 32}, "k1")
    out = t.rewrite_text(
        f"see {url}.\n".encode(), message_id="m@x.example", recipient="r@y.example"
    )
    # The link is tracked; the brackets and the full stop stay in the text after it.
    assert out.startswith(b"see https://t.example.com/c/")
    assert out.endswith(b")" * n + b".\n")
