"""Open and click tracking, one-click unsubscribe, and the tracking server.

Sender side::

    from mailsflux.tracking import Tracker

    tracker = Tracker("https://t.example.com", {"k1": key}, "k1")
    html = tracker.rewrite_html(html, message_id=mid, recipient=addr, job="welcome")
    text = tracker.rewrite_text(text, message_id=mid, recipient=addr, job="welcome")
    headers = tracker.unsubscribe_headers(mid, addr, "welcome", mailto="unsub@example.com")
    link = tracker.unsubscribe_url(mid, addr, "welcome")   # for a visible link

    store = EventStore("tracking.sqlite", secret)
    if store.is_suppressed(addr): ...                      # skip: they unsubscribed

Server side: :class:`TrackingApp` is a plain ASGI app (mount it anywhere);
``mailsflux track-server --config tracking.toml`` (:func:`main`) runs it under
uvicorn.  :func:`load_config` reads the TOML file both sides share.
"""

from mailsflux.tracking.config import TrackingConfig, load_config, write_new_config
from mailsflux.tracking.events import EventStore, PurgeResult, Retention, Suppressed, TrackEvent
from mailsflux.tracking.serve import main
from mailsflux.tracking.server import TrackingApp
from mailsflux.tracking.tokens import TokenKind, TokenPayload, TokenVerifier
from mailsflux.tracking.tracker import LIST_UNSUBSCRIBE_POST, Tracker

__all__ = [
    "LIST_UNSUBSCRIBE_POST",
    "EventStore",
    "PurgeResult",
    "Retention",
    "Suppressed",
    "TokenKind",
    "TokenPayload",
    "TokenVerifier",
    "TrackEvent",
    "Tracker",
    "TrackingApp",
    "TrackingConfig",
    "load_config",
    "main",
    "write_new_config",
]
