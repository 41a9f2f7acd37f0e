"""Open and click tracking, one-click unsubscribe, and the tracking server.

Sender side::

    from mailsflux.tracking import Tracker

    tracker = Tracker("https://t.example.com", {"k1": key}, "k1")
    html = tracker.rewrite_html(html, message_id=mid, recipient=addr, job="welcome")
    text = tracker.rewrite_text(text, message_id=mid, recipient=addr, job="welcome")
    headers = tracker.unsubscribe_headers(mid, addr, "welcome", mailto="unsub@example.com")
    link = tracker.unsubscribe_url(mid, addr, "welcome")   # for a visible link
    prefs = tracker.preferences_url(addr, "welcome")       # the preference page (sealed)

    store = EventStore("tracking.sqlite", secret)
    if store.is_suppressed(addr): ...                      # skip: they unsubscribed
    if store.is_suppressed_for(addr, "welcome"): ...       # ... or left this list

Server side: :class:`TrackingApp` is a plain ASGI app (mount it anywhere);
``mailsflux track-server --config tracking.toml`` (:func:`main`) runs it under
uvicorn.  :func:`load_config` reads the TOML file both sides share.  The
pages a recipient sees (unsubscribe, preferences, errors) come from
:class:`Pages`: the ``[sender]`` and ``[lists]`` tables of that file,
Mustache templates a tenant may replace, and strings per language.
"""

from mailsflux.tracking.config import TrackingConfig, load_config, write_new_config
from mailsflux.tracking.events import (
    EventStore,
    ListSuppressed,
    PurgeResult,
    Retention,
    Suppressed,
    TrackEvent,
)
from mailsflux.tracking.pages import ListInfo, Pages, SenderSpec
from mailsflux.tracking.serve import main
from mailsflux.tracking.server import TrackingApp
from mailsflux.tracking.tokens import (
    PreferencesPayload,
    TokenKind,
    TokenPayload,
    TokenVerifier,
)
from mailsflux.tracking.tracker import LIST_UNSUBSCRIBE_POST, Tracker

__all__ = [
    "LIST_UNSUBSCRIBE_POST",
    "EventStore",
    "ListInfo",
    "ListSuppressed",
    "Pages",
    "PreferencesPayload",
    "PurgeResult",
    "Retention",
    "SenderSpec",
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
