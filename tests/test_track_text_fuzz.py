"""Fuzzing the compiled text-part rewriter: on any bytes it never crashes, and
its output is byte for byte what the Python rewriter it replaced made (kept
here as the specification: a regex over the text decoded with
surrogateescape, one token per URL)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking import Tracker
from tests.test_track_text_trim import reference_trim

BASE = "https://t.example.com"
T = Tracker(BASE, {"k1": b"f" * 32}, "k1", clock=lambda: 1_760_000_000)
MID, RCPT = "m.1@x.example", "r@y.example"

_TEXT_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.I)


def reference(
    tracker: Tracker,
    text: bytes,
    *,
    message_id: str,
    recipient: str,
    job: str = "",
    unsubscribe_prefix: str | None = None,
) -> bytes:
    """The Python rewriter as it was before it was compiled."""
    src = text.decode("utf-8", "surrogateescape")
    own = tracker.base_url + "/"

    def sub(m: re.Match[str]) -> str:
        whole = m.group(0)
        url = reference_trim(whole)
        if url.startswith(own) or (unsubscribe_prefix and url.startswith(unsubscribe_prefix)):
            return whole
        try:
            tok = tracker.token(
                "click", message_id=message_id, recipient=recipient, job=job, url=url
            )
        except (UnicodeEncodeError, ValueError):  # undecodable bytes or too long
            return whole
        return f"{tracker.base_url}/c/{tok}{whole[len(url) :]}"

    return _TEXT_URL.sub(sub, src).encode("utf-8", "surrogateescape")


PIECES = [
    # re.I takes U+017F (LONG S) for "s".
    *("http://", "https://", "HTTPS://", "hTtP://", "http\u017f://", "HTTP\u017f://"),
    *("http:/", "https:"),
    *("http", "https", "ht", "://", "e.com", "/x", "?a=1&b=2", "#f", "_", "a", "é", "9", "\u017f"),
    *(" ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028"),
    *("\u3000", "<", ">", '"', "'", "`", "(", ")", "[", "]", ".", ",", ";", ":", "!", "?"),
    *(BASE + "/c/k1.AAAA", BASE + "/", BASE, "https://u.example/unsub", "\ufffd", "\U0001d11e"),
]

text_bytes = st.lists(
    st.one_of(
        st.sampled_from(PIECES).map(lambda s: s.encode("utf-8")),
        st.binary(max_size=4),
    ),
    max_size=50,
).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(
    text_bytes,
    st.sampled_from([None, "", "https://u.example/unsub", "http"]),
    st.sampled_from(["", "job", "j" * 3000]),
    st.sampled_from([RCPT, "r\udcff@y.example"]),
)
@example(b"see https://e.com/a(b)).", None, "", RCPT)
@example(b"xhttps://e.com _https://e.com \xc3\xa9https://e.com", None, "", RCPT)
@example(b"https://e.com/\xff\xfe", None, "", RCPT)
@example(b"https://" + b"a" * 9000, None, "", RCPT)
@example(b"https://e.com/x\xc2\x85y", None, "", RCPT)
def test_same_bytes_as_the_python_rewriter(
    text: bytes, skip: str | None, job: str, rcpt: str
) -> None:
    got = T.rewrite_text(text, message_id=MID, recipient=rcpt, job=job, unsubscribe_prefix=skip)
    want = reference(T, text, message_id=MID, recipient=rcpt, job=job, unsubscribe_prefix=skip)
    assert got == want


def test_tokens_in_the_text_verify() -> None:
    out = T.rewrite_text(
        b"Start: https://e.com/docs/start. Billing (https://e.com/b?plan=Team)\n",
        message_id=MID,
        recipient=RCPT,
        job="welcome",
    )
    toks = re.findall(rb"/c/(k1\.[A-Za-z0-9_-]+)", out)
    assert len(toks) == 2
    payloads = [T.verifier.decode(t.decode(), "click") for t in toks]
    urls = [p.url if p is not None else None for p in payloads]
    assert urls == ["https://e.com/docs/start", "https://e.com/b?plan=Team"]
    assert b"start. Billing (" not in out  # both links were replaced
    assert out.startswith(b"Start: " + BASE.encode() + b"/c/")
