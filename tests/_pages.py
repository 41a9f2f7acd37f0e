"""A tracking server with a sender's pages, for the page tests: real uvicorn on
port 0, a real event store, and a clock the test moves (undo windows, expiry)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from mailsflux.tracking import EventStore, Tracker, TrackingApp
from mailsflux.tracking.pages import ListInfo, Pages, SenderSpec
from tests._http import Server

KEYS = {"k1": b"1" * 32}
SECRET = b"s" * 32
MID, RCPT = "abc.12@northwind.example", "Zoe.Haddad@example.org"
SENDER = SenderSpec(
    name="Northwind Cloud",
    contact="support@northwind.example",
    privacy_url="https://northwind.example/privacy",
)
LISTS = {
    "welcome": ListInfo(name="Welcome series", description="Tips for your first weeks"),
    "news": ListInfo(name="Product news", description="New features, once a month"),
}


class Clock:
    """The server's clock: starts now, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Site:
    def __init__(self, server: Server, tracker: Tracker, store: EventStore, clock: Clock) -> None:
        self.server = server
        self.tracker = tracker
        self.store = store
        self.clock = clock
        self.origin = f"http://127.0.0.1:{server.port}"

    def local(self, url: str) -> str:
        """A URL the tracker made, pointed at this test's server."""
        assert url.startswith(self.tracker.base_url + "/")
        return self.origin + url[len(self.tracker.base_url) :]

    def unsubscribe_url(self, job: str = "welcome", rcpt: str = RCPT) -> str:
        return self.local(self.tracker.unsubscribe_url(MID, rcpt, job))

    def preferences_url(self, job: str = "welcome", rcpt: str = RCPT) -> str:
        return self.local(self.tracker.preferences_url(rcpt, job))

    def kinds(self) -> list[tuple[str, str]]:
        """The events recorded so far: (kind, job)."""
        self.store.flush()
        return [(e.kind, e.job) for e in self.store.events()]


@contextlib.contextmanager
def site(
    tmp_path: Path, sender: SenderSpec = SENDER, *, base: Path | None = None
) -> Iterator[Site]:
    clock = Clock()
    sent = clock.now - 3600  # an hour before: nothing is flagged "fast"
    tracker = Tracker("https://t.northwind.example", KEYS, "k1", clock=lambda: sent)
    store = EventStore(tmp_path / "tracking.sqlite", SECRET)
    pages = Pages(sender, LISTS, base=base)
    app = TrackingApp(tracker.verifier, store, clock=clock, pages=pages)
    with Server(app) as server:
        yield Site(server, tracker, store, clock)
