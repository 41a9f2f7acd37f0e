"""The tracking server: a plain ASGI application.

Routes (relative to where it is mounted):

- ``GET|HEAD /o/{token}``: the 1x1 GIF; records an open.
- ``GET|HEAD /c/{token}``: ``302`` to the URL signed into the token; records
  a click.  Only a genuine click token redirects, so there is no open
  redirect: anything else is ``404``.
- ``GET|HEAD /u/{token}``: a confirmation page whose button POSTs; nothing
  changes on GET (link scanners follow links).
- ``POST /u/{token}`` with ``List-Unsubscribe=One-Click`` (form-urlencoded
  or multipart, RFC 8058): suppresses the address at once (committed before
  the answer) and records an unsubscribe.

Machine requests are recorded with ``machine=True`` and a reason
(:mod:`mailsflux.tracking.machines`).  Events go to an
:class:`~mailsflux.tracking.events.EventStore` whose writer thread batches them,
so a request never waits for the disk (but for an unsubscribe).

:func:`main` runs it under uvicorn (``mailsflux track-server``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

from mailsflux.tracking.events import EventStore, TrackEvent
from mailsflux.tracking.machines import classify
from mailsflux.tracking.tokens import TokenVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("mailsflux.tracking")

GIF: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Largest POST body read for an unsubscribe.
MAX_BODY: Final = 16 * 1024

_COMMON: Final = [
    (b"cache-control", b"no-store, private"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
_PIXEL_HEADERS: Final = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    *_COMMON,
]
_NOT_FOUND: Final = b"not found\n"
_NOT_FOUND_HEADERS: Final = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_NOT_FOUND)).encode()),
    *_COMMON,
]
_PAGE_HEADERS: Final = [
    (b"content-type", b"text/html; charset=utf-8"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    *_COMMON,
]
_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}
button{{font:inherit;padding:.5em 1.5em;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""
_CONFIRM: Final = _PAGE.format(
    title="Unsubscribe",
    body=(
        "<p>Stop receiving these emails?</p>"
        '<form method="post" action="">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    ),
).encode("utf-8")
_DONE: Final = _PAGE.format(
    title="Unsubscribed",
    body="<p>You are unsubscribed and will not receive these emails any more.</p>",
).encode("utf-8")
_MULTIPART_ONE_CLICK: Final = re.compile(
    rb'name="?List-Unsubscribe"?\s*\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n'
)


#: What RFC 3986 (section 2) does not allow in a URI: characters that are
#: neither unreserved nor reserved, and ``%`` that does not start an escape.
_NOT_URI: Final = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")


def _escape(m: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogatepass"))


def location(url: str) -> bytes:
    """A URL as a ``Location`` value (RFC 9110 10.2.2: a URI reference).

    Whatever a URI cannot hold (``<``, ``"``, spaces, controls, non-ASCII, a
    stray ``%``) is percent-encoded as UTF-8; valid escapes and reserved
    characters stay, so the target is the URL that was signed.
    """
    return _NOT_URI.sub(_escape, url).encode("ascii")


def is_one_click(body: bytes, content_type: bytes) -> bool:
    """Does a POST body hold ``List-Unsubscribe=One-Click`` (RFC 8058)?"""
    if content_type.lower().startswith(b"multipart/form-data"):
        return _MULTIPART_ONE_CLICK.search(body) is not None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return ("List-Unsubscribe", "One-Click") in pairs


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TrackingApp:
    """ASGI app answering opens, clicks and unsubscribes (see the module docstring).

    ``window``: events this many seconds after the send time are flagged
    as machine (``"fast"``).  ``store_ip``: keep the client address
    (encrypted) with each event.  With ``lifespan`` handling (``uvicorn``
    does it) the store's writer starts and stops with the server and
    retention runs every ``purge_every`` seconds; mounted without it, the
    writer starts on the first event.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        store: EventStore,
        *,
        window: float = 10.0,
        store_ip: bool = False,
        purge_every: float | None = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        self.store = store
        self.window = window
        self.store_ip = store_ip
        self.purge_every = purge_every
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # pragma: no cover - nothing to offer
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        purger: asyncio.Task[None] | None = None
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.store.start()
                if self.purge_every:
                    purger = asyncio.create_task(self._purge_loop(self.purge_every))
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                if purger is not None:
                    purger.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await purger
                await asyncio.to_thread(self.store.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _purge_loop(self, every: float) -> None:
        while True:
            try:
                r = await asyncio.to_thread(self.store.purge)
                if r.deleted or r.scrubbed:
                    log.info("retention: %d events deleted, %d scrubbed", r.deleted, r.scrubbed)
            except Exception:  # keep serving; report
                log.exception("retention purge failed")
            await asyncio.sleep(every)

    def _event(self, scope: Scope, kind: str, p: Any, url: str | None) -> TrackEvent:
        ua = ""
        for k, v in scope["headers"]:
            if k == b"user-agent":
                ua = v.decode("latin-1")
                break
        now = self.clock()
        reason = classify(scope["method"], ua, p.sent_at, now, self.window)
        ip = None
        if self.store_ip and scope.get("client"):
            ip = scope["client"][0]
        return TrackEvent(
            kind=kind,  # type: ignore[arg-type]
            at=now,
            message_id=p.message_id,
            recipient=p.recipient,
            job=p.job,
            url=url,
            user_agent=ua or None,
            ip=ip,
            machine=bool(reason),
            reason=reason,
        )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if len(path) < 4 or path[0] != "/" or path[2] != "/":
            await _respond(send, 404, _NOT_FOUND_HEADERS, _NOT_FOUND)
            return
        route, token, method = path[1], path[3:], scope["method"]
        head = method == "HEAD"
        if route == "c":
            if method != "GET" and not head:
                await self._not_allowed(send, b"GET, HEAD")
                return
            p = self.verifier.decode(token, "click")
            # Only http(s) links are ever tracked; a genuine token for any other
            # scheme (a leaked key, a bug) must still never become a redirect.
            if p is None or not p.url[:8].lower().startswith(("http://", "https://")):
                await _respond(send, 404, _NOT_FOUND_HEADERS, _NOT_FOUND)
                return
            self.store.record(self._event(scope, "click", p, p.url))
            await _respond(
                send,
                302,
                [(b"location", location(p.url)), (b"content-length", b"0"), *_COMMON],
                b"",
            )
        elif route == "o":
            if method != "GET" and not head:
                await self._not_allowed(send, b"GET, HEAD")
                return
            p = self.verifier.decode(token, "open")
            if p is None:
                await _respond(send, 404, _NOT_FOUND_HEADERS, _NOT_FOUND)
                return
            self.store.record(self._event(scope, "open", p, None))
            await _respond(send, 200, _PIXEL_HEADERS, b"" if head else GIF)
        elif route == "u":
            await self._unsubscribe(scope, receive, send, token, method)
        else:
            await _respond(send, 404, _NOT_FOUND_HEADERS, _NOT_FOUND)

    async def _not_allowed(self, send: Send, allow: bytes) -> None:
        body = b"method not allowed\n"
        await _respond(
            send,
            405,
            [
                (b"allow", allow),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *_COMMON,
            ],
            body,
        )

    async def _unsubscribe(
        self, scope: Scope, receive: Receive, send: Send, token: str, method: str
    ) -> None:
        if method not in ("GET", "HEAD", "POST"):
            await self._not_allowed(send, b"GET, HEAD, POST")
            return
        p = self.verifier.decode(token, "unsubscribe")
        if p is None:
            await _respond(send, 404, _NOT_FOUND_HEADERS, _NOT_FOUND)
            return
        if method != "POST":
            headers = [(b"content-length", str(len(_CONFIRM)).encode()), *_PAGE_HEADERS]
            await _respond(send, 200, headers, b"" if method == "HEAD" else _CONFIRM)
            return
        body = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if len(body) > MAX_BODY:
                text = b"request body too large\n"
                await _respond(
                    send,
                    413,
                    [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))],
                    text,
                )
                return
            if not msg.get("more_body", False):
                break
        ctype = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if not is_one_click(bytes(body), ctype):
            data = b"expected the form field List-Unsubscribe=One-Click\n"
            await _respond(
                send,
                400,
                [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(data))],
                data,
            )
            return
        await asyncio.to_thread(
            self.store.suppress,
            p.recipient,
            reason="unsubscribe",
            job=p.job,
            message_id=p.message_id,
        )
        self.store.record(self._event(scope, "unsubscribe", p, None))
        await _respond(
            send, 200, [(b"content-length", str(len(_DONE)).encode()), *_PAGE_HEADERS], _DONE
        )


__all__ = ["GIF", "TrackingApp", "is_one_click", "location"]
