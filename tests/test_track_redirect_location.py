"""Click redirects: the ``Location`` header holds only characters a URI allows.

A signed URL with ``<``, ``"`` or a space (typed into a template by hand) must
not reach the browser raw: RFC 3986 section 2 allows only unreserved and
reserved characters and percent-escapes; everything else is percent-encoded
as UTF-8, while valid escapes and reserved characters stay as they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailsflux.tracking import EventStore, Tracker, TrackingApp
from mailsflux.tracking.server import location
from tests._http import Server

URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
CASES = {
    'https://e.com/a"b<c>d': "https://e.com/a%22b%3Cc%3Ed",
    "https://e.com/p?q=<script>&x='1'": "https://e.com/p?q=%3Cscript%3E&x='1'",
    "https://e.com/a b\\c{d}|e^f`g": "https://e.com/a%20b%5Cc%7Bd%7D%7Ce%5Ef%60g",
    "https://e.com/100%?ok=%41%4a&bad=%zz%4": "https://e.com/100%25?ok=%41%4a&bad=%25zz%254",
    "https://e.com/€?[x]=@!$&*+,;=#frag": "https://e.com/%E2%82%AC?[x]=@!$&*+,;=#frag",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, Tracker]]:
    sent = time.time() - 3600
    tracker = Tracker("https://t.example.com", {"k1": b"1" * 32}, "k1", clock=lambda: sent)
    store = EventStore(tmp_path / "track.sqlite", b"s" * 32)
    with Server(TrackingApp(tracker.verifier, store, window=10)) as srv:
        yield srv, tracker


def test_redirects_carry_only_uri_characters(server: tuple[Server, Tracker]) -> None:
    srv, tracker = server
    for url, want in CASES.items():
        link = tracker.click_url(url, message_id="m@x.example", recipient="r@y.example")
        status, headers, _ = srv.request("GET", link[len("https://t.example.com") :])
        assert (status, headers["location"]) == (302, want)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
@example("%80")
@example("%E2%82")
@example("100%")
def test_location_is_a_uri_that_decodes_to_the_same_text(tail: str) -> None:
    url = "https://e.com/" + tail
    got = location(url).decode("ascii")
    assert URI_CHARS.fullmatch(got)
    # Only what had to change changed: decoding both gives the same bytes
    # (as bytes: a kept escape such as %80 need not be UTF-8).
    assert unquote_to_bytes(got) == unquote_to_bytes(url)
