"""The compiled ``Rewriter.unsubscribe_pair``: the URL and List-Unsubscribe
value of every tracked message, written in one buffer.

Checked against the rewriter's own ``token()`` (a separate code path through
the same seal) formatted the way the Python code did before, and opened by
the verifier, which uses the cryptography package's AES-SIV: with AES-NI in C
and without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking import Tracker
from mailsflux.tracking import _rewrite as _track
from mailsflux.tracking.tracker import mailto_address

BASE = "https://t.example.com/base-path"
KEY = b"\x07" * 32
UNSUBSCRIBE = 2  # the token kind

# Message ids, addresses and job names as a job could hold them: any text
# (non-ASCII and surrogates included), short and long.
texts = st.text(min_size=0, max_size=300)
mailtos = st.one_of(
    st.none(),
    st.sampled_from(["unsub@sender.example", "mailto:u@s.example", "désinscrire@exemple.fr"]),
)


def tracker(now: float) -> Tracker:
    return Tracker(BASE, {"k1": KEY}, "k1", clock=lambda: now)


@contextlib.contextmanager
def sealing(ni: bool) -> Iterator[None]:
    """Tokens sealed in C with AES-NI, or by the cryptography package."""
    if ni and not _track.aes_ni_available():
        pytest.skip("no AES-NI on this CPU")
    _track.use_aes_ni(ni)
    try:
        yield
    finally:
        _track.use_aes_ni(True)  # back to the default: AES-NI where the CPU has it


ways = pytest.mark.parametrize("ni", [True, False], ids=["aes-ni", "cryptography"])


@ways
@settings(max_examples=150, deadline=None)
@given(
    msgid=texts,
    rcpt=texts,
    job=texts,
    sent=st.integers(min_value=0, max_value=2**40),
    mailto=mailtos,
)
@example(msgid="m@x", rcpt="a@b", job="", sent=0, mailto=None)
@example(msgid="m" * 2000, rcpt="r" * 2000, job="j" * 2000, sent=1, mailto=None)
def test_pair_is_the_token_of_token_formatted(
    ni: bool, msgid: str, rcpt: str, job: str, sent: int, mailto: str | None
) -> None:
    with sealing(ni):
        check_pair(msgid, rcpt, job, sent, mailto)


def check_pair(msgid: str, rcpt: str, job: str, sent: int, mailto: str | None) -> None:
    t = tracker(sent + 0.75)
    rw = t.rewriter
    addr = None if mailto is None else mailto_address(mailto)
    try:
        want_token = rw.token(UNSUBSCRIBE, msgid, rcpt, job, sent)
    except (ValueError, UnicodeEncodeError) as exc:
        with pytest.raises(type(exc)):
            rw.unsubscribe_pair(msgid, rcpt, job, sent, addr)
        return
    url, value = rw.unsubscribe_pair(msgid, rcpt, job, sent, addr)
    assert url == f"{BASE}/u/{want_token}"
    if addr is None:
        assert value == f"<{url}>"
    else:
        assert value == f"<{url}>, <mailto:{addr}?subject=unsubscribe-{want_token}>"
    # The Tracker's own call stamps the clock's second and gives the same.
    assert t.unsubscribe_pair(msgid, rcpt, job, mailto=mailto) == (url, value)
    got = t.decode(url.rpartition("/u/")[2], "unsubscribe")
    assert got is not None
    assert (got.message_id, got.recipient, got.job, got.sent_at) == (msgid, rcpt, job, sent)


@ways
def test_a_payload_too_long_for_a_token_is_refused(ni: bool) -> None:
    with sealing(ni):
        check_too_long()


def check_too_long() -> None:
    rw = tracker(1).rewriter
    # The message's part of the payload is bounded (2,048 bytes).
    rw.unsubscribe_pair("m", "a" * 2000 + "@example.org", "j", 1)
    for msgid, rcpt, job in (
        ("m", "a" * 2100 + "@example.org", "j"),
        ("m" * 1100, "r@x", "j" * 1100),
    ):
        with pytest.raises(ValueError, match="too long for a tracking token"):
            rw.unsubscribe_pair(msgid, rcpt, job, 1)
        with pytest.raises(ValueError, match="too long for a tracking token"):
            rw.token(UNSUBSCRIBE, msgid, rcpt, job, 1)
