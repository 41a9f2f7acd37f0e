"""The tracking server: a plain ASGI application.

Routes (relative to where it is mounted):

- ``GET|HEAD /o/{token}``: the 1x1 GIF; records an open.
- ``GET|HEAD /c/{token}``: ``302`` to the URL signed into the token; records
  a click.  Only a genuine click token redirects, so there is no open
  redirect: anything else is ``404``.  Opens and clicks of a person who
  objected to tracking (on the preference page) are not recorded.
- ``GET|HEAD /u/{token}``: the unsubscribe page: who sends, which list, the
  masked address, and the current state; nothing changes on GET (link
  scanners follow links).
- ``POST /u/{token}`` with ``List-Unsubscribe=One-Click`` (form-urlencoded
  or multipart, RFC 8058): suppresses the address at once (committed before
  the answer) and records an unsubscribe; with ``scope=list`` only the
  token's list (its job) is stopped.  ``action=undo`` with ``scope=list|all``
  takes a person's own opt-out back within ``undo_hours``.
- ``GET|HEAD|POST /p/{token}``: the preference page (sealed token): the
  lists this person gets from the sender, "stop everything", and the
  objection to tracking.

Every answer, errors included, carries the same security headers (CSP,
frame denial, no-store, no-referrer, nosniff); every error is an HTML page
(with a charset) saying what to do next.  Pages come from
:mod:`mailsflux.tracking.pages`, in the reader's language.

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
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

from mailsflux import masking
from mailsflux.tracking.events import EventStore, TrackEvent, TrackKind
from mailsflux.tracking.machines import classify
from mailsflux.tracking.pages import Locale, Pages, mask_address
from mailsflux.tracking.tokens import PreferencesPayload, TokenPayload, TokenVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = masking.logger("mailsflux.tracking")  # addresses masked in every record

GIF: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Largest POST body read for an unsubscribe.
MAX_BODY: Final = 16 * 1024

_COMMON: Final = [
    (b"cache-control", b"no-store, private"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]
_HTML: Final = (b"content-type", b"text/html; charset=utf-8")
_MULTIPART_ONE_CLICK: Final = re.compile(
    rb'name="?List-Unsubscribe"?\s*\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n'
)
_HOUR: Final = 3600.0
_DAY: Final = 86400.0


class _TooLarge(Exception):
    pass


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


def form_fields(body: bytes, content_type: bytes) -> dict[str, list[str]]:
    """A urlencoded form's fields (each name to all its values); ``{}`` if unreadable.

    Multipart bodies come only from mail programs' one-click POSTs
    (RFC 8058), so only that field is read from them.
    """
    if content_type.lower().startswith(b"multipart/form-data"):
        return {"List-Unsubscribe": ["One-Click"]} if is_one_click(body, content_type) else {}
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return ""


class TrackingApp:
    """ASGI app answering opens, clicks, unsubscribes and preference pages
    (see the module docstring).

    ``window``: events this many seconds after the send time are flagged
    as machine (``"fast"``).  ``store_ip``: keep the client address
    (encrypted) with each event.  ``pages``: the sender's settings and the
    page templates (defaults: the shipped templates, no sender name).  With
    ``lifespan`` handling (``uvicorn`` does it) the store's writer starts and
    stops with the server and retention runs every ``purge_every`` seconds;
    mounted without it, the writer starts on the first event.
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
        pages: Pages | None = None,
    ) -> None:
        self.verifier = verifier
        self.store = store
        self.window = window
        self.store_ip = store_ip
        self.purge_every = purge_every
        self.clock = clock
        self.pages = pages if pages is not None else Pages()
        self._objections = store.objection_view()
        # Every answer carries these, whatever its status: a 400 or a 404
        # page is framed, cached and leaks a Referer as easily as any other.
        self._security = [(b"content-security-policy", self.pages.csp()), *_COMMON]

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

    def _event(
        self,
        scope: Scope,
        kind: TrackKind,
        *,
        message_id: str,
        recipient: str,
        job: str,
        sent_at: float,
        url: str | None = None,
    ) -> TrackEvent:
        ua = _header(scope, b"user-agent")
        now = self.clock()
        reason = classify(scope["method"], ua, sent_at, now, self.window)
        ip = None
        if self.store_ip and scope.get("client"):
            ip = scope["client"][0]
        return TrackEvent(
            kind=kind,
            at=now,
            message_id=message_id,
            recipient=recipient,
            job=job,
            url=url,
            user_agent=ua or None,
            ip=ip,
            machine=bool(reason),
            reason=reason,
        )

    def _track(self, scope: Scope, kind: TrackKind, p: TokenPayload, url: str | None) -> None:
        """Record an open or click, unless this person objected to tracking."""
        if p.recipient in self._objections:
            return
        self.store.record(
            self._event(
                scope,
                kind,
                message_id=p.message_id,
                recipient=p.recipient,
                job=p.job,
                sent_at=p.sent_at,
                url=url,
            )
        )

    # -- answers -------------------------------------------------------------

    def _locale(self, scope: Scope) -> Locale:
        return self.pages.locale(_header(scope, b"accept-language"))

    async def _html(
        self,
        send: Send,
        status: int,
        loc: Locale,
        body: bytes,
        head: bool,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [
            _HTML,
            (b"content-length", str(len(body)).encode()),
            (b"content-language", loc.lang.encode("ascii")),
            (b"vary", b"Accept-Language"),
            *(extra or []),
            *self._security,
        ]
        await _respond(send, status, headers, b"" if head else body)

    async def _error(
        self, scope: Scope, send: Send, status: int, allow: bytes | None = None
    ) -> None:
        """A page saying what went wrong and what to do next, in the reader's language."""
        loc = self._locale(scope)
        t = self.pages.texts(loc, {})
        title, message = {
            400: ("error_form_title", "error_form"),
            405: ("error_method_title", "error_method"),
            410: ("error_expired_title", "error_expired"),
            413: ("error_form_title", "error_form"),
        }.get(status, ("error_title", "error_bad"))
        if status in (400, 405, 413):
            steps = [t["step_reload"]]
        else:
            steps = [t["step_latest"], t["step_client"]]
            if status == 404:
                steps.insert(1, t["step_copy"])
        if self.pages.sender.contact:
            steps.append(t["step_contact"])
        body = self.pages.render(
            "error", loc, t, title=t[title], heading=t[title], message=t[message], steps=steps
        )
        extra = [(b"allow", allow)] if allow is not None else None
        await self._html(send, status, loc, body, scope["method"] == "HEAD", extra)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if len(path) < 4 or path[0] != "/" or path[2] != "/":
            await self._error(scope, send, 404)
            return
        route, token, method = path[1], path[3:], scope["method"]
        head = method == "HEAD"
        if route == "c":
            if method != "GET" and not head:
                await self._error(scope, send, 405, b"GET, HEAD")
                return
            p = self.verifier.decode(token, "click")
            # Only http(s) links are ever tracked; a genuine token for any other
            # scheme (a leaked key, a bug) must still never become a redirect.
            if p is None or not p.url[:8].lower().startswith(("http://", "https://")):
                await self._error(scope, send, 404)
                return
            self._track(scope, "click", p, p.url)
            await _respond(
                send,
                302,
                [(b"location", location(p.url)), (b"content-length", b"0"), *self._security],
                b"",
            )
        elif route == "o":
            if method != "GET" and not head:
                await self._error(scope, send, 405, b"GET, HEAD")
                return
            p = self.verifier.decode(token, "open")
            if p is None:
                await self._error(scope, send, 404)
                return
            self._track(scope, "open", p, None)
            headers = [
                (b"content-type", b"image/gif"),
                (b"content-length", str(len(GIF)).encode()),
                *self._security,
            ]
            await _respond(send, 200, headers, b"" if head else GIF)
        elif route == "u":
            await self._unsubscribe(scope, receive, send, token, method)
        elif route == "p":
            await self._preferences(scope, receive, send, token, method)
        else:
            await self._error(scope, send, 404)

    async def _body(self, receive: Receive) -> bytes | None:
        """The request body; ``None`` if the client went away; raises :class:`_TooLarge`."""
        body = bytearray()
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            body += msg.get("body", b"")
            if len(body) > MAX_BODY:
                raise _TooLarge
            if not msg.get("more_body", False):
                return bytes(body)

    async def _form(
        self, scope: Scope, receive: Receive, send: Send
    ) -> dict[str, list[str]] | None:
        """The POSTed form, or ``None`` once an answer (413) was sent or the client left."""
        try:
            body = await self._body(receive)
        except _TooLarge:
            await self._error(scope, send, 413)
            return None
        if body is None:
            return None
        return form_fields(body, _header(scope, b"content-type").encode("latin-1"))

    def _expired(self, made_at: float) -> bool:
        days = self.pages.sender.link_days
        return bool(days) and self.clock() - made_at > days * _DAY

    def _undoable(self, reason: str, at: float) -> bool:
        """May a person take back this opt-out from a link? Only their own, and only for a while."""
        hours = self.pages.sender.undo_hours
        return reason == "unsubscribe" and self.clock() - at <= hours * _HOUR

    # -- unsubscribe ---------------------------------------------------------

    async def _unsubscribe(
        self, scope: Scope, receive: Receive, send: Send, token: str, method: str
    ) -> None:
        if method not in ("GET", "HEAD", "POST"):
            await self._error(scope, send, 405, b"GET, HEAD, POST")
            return
        p = self.verifier.decode(token, "unsubscribe")
        if p is None:
            await self._error(scope, send, 404)
            return
        loc = self._locale(scope)
        notice = ""
        if method == "POST":
            fields = await self._form(scope, receive, send)
            if fields is None:
                return
            done = await asyncio.to_thread(self._unsubscribe_post, scope, p, fields)
            if done is None:
                await self._error(scope, send, 400)
                return
            notice = done
        body = await asyncio.to_thread(self._unsubscribe_page, p, loc, notice)
        await self._html(send, 200, loc, body, method == "HEAD")

    def _unsubscribe_post(
        self, scope: Scope, p: TokenPayload, fields: dict[str, list[str]]
    ) -> str | None:
        """Apply a POST to ``/u/``; the notice to show, or ``None`` for a bad form.

        ``List-Unsubscribe=One-Click`` without a scope is a mail program's
        one-click request (RFC 8058): it stops everything, as it always has,
        erring on the side of sending nothing.
        """
        st = self.store
        scope_ = (fields.get("scope") or ["all"])[-1]

        def event(kind: TrackKind) -> None:
            st.record(
                self._event(
                    scope,
                    kind,
                    message_id=p.message_id,
                    recipient=p.recipient,
                    job=p.job,
                    sent_at=p.sent_at,
                )
            )

        if fields.get("action") == ["undo"]:
            if scope_ == "list" and p.job:
                off = st.list_suppressions(p.recipient).get(p.job)
                if off is not None and self._undoable(off.reason, off.at):
                    st.unsuppress_list(p.recipient, p.job)
                    event("resubscribe-list")
                    return "undone_list"
            elif scope_ == "all":
                g = st.suppression(p.recipient)
                if g is not None and self._undoable(g.reason, g.at):
                    st.unsuppress(p.recipient)
                    event("resubscribe")
                    return "undone_all"
            return ""  # nothing (left) to undo: the page shows the state as it is
        if fields.get("List-Unsubscribe") != ["One-Click"]:
            return None
        if scope_ == "list" and p.job:
            st.suppress_list(p.recipient, p.job, message_id=p.message_id)
            event("unsubscribe-list")
            return "done_list"
        st.suppress(p.recipient, reason="unsubscribe", job=p.job, message_id=p.message_id)
        event("unsubscribe")
        return "done_all"

    def _state(
        self, address: str, list_id: str, loc: Locale
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """This address's opt-outs as template data, and the values for the strings."""
        st = self.store
        g = st.suppression(address)
        off = st.list_suppressions(address)
        undo = self.pages.sender.undo_hours * _HOUR
        values = {
            "address": mask_address(address),
            "list": self.pages.list_name(list_id),
        }
        data: dict[str, Any] = {"off": off, "all_off": False, "list_off": False}
        if g is not None:
            values["since_all"] = loc.date(g.at)
            values["until_all"] = loc.date(g.at + undo)
            data["all_off"] = {
                "by_person": g.reason == "unsubscribe",
                "can_undo": self._undoable(g.reason, g.at),
            }
        lo = off.get(list_id) if list_id else None
        if lo is not None:
            values["since_list"] = loc.date(lo.at)
            values["until_list"] = loc.date(lo.at + undo)
            data["list_off"] = {"can_undo": self._undoable(lo.reason, lo.at)}
        return data, values

    def _unsubscribe_page(self, p: TokenPayload, loc: Locale, notice: str) -> bytes:
        data, values = self._state(p.recipient, p.job, loc)
        t = self.pages.texts(loc, values)
        if data["all_off"]:
            data["list_off"] = False  # everything is off: the list's own state says nothing
            heading = t["state_title"]
        elif data["list_off"]:
            heading = t["state_title"]
        else:
            heading = t["resubscribed_title"] if notice.startswith("undone") else t["unsub_title"]
        prefs = self.verifier.preferences_token(p.key_id, p.recipient, p.job, int(self.clock()))
        return self.pages.render(
            "unsubscribe",
            loc,
            t,
            title=heading,
            heading=heading,
            notice=t.get(notice, ""),
            ask=not data["all_off"] and not data["list_off"],
            has_list=bool(p.job),
            all_off=data["all_off"],
            list_off=data["list_off"],
            preferences_url=f"../p/{prefs}",
        )

    # -- preferences -----------------------------------------------------------

    async def _preferences(
        self, scope: Scope, receive: Receive, send: Send, token: str, method: str
    ) -> None:
        if method not in ("GET", "HEAD", "POST"):
            await self._error(scope, send, 405, b"GET, HEAD, POST")
            return
        pp = self.verifier.decode_preferences(token)
        if pp is None:
            await self._error(scope, send, 404)
            return
        if self._expired(pp.issued_at):
            await self._error(scope, send, 410)
            return
        loc = self._locale(scope)
        notice = ""
        if method == "POST":
            fields = await self._form(scope, receive, send)
            if fields is None:
                return
            if fields.get("form") != ["preferences"]:
                await self._error(scope, send, 400)
                return
            await asyncio.to_thread(self._preferences_post, scope, pp, fields)
            notice = "saved"
        body = await asyncio.to_thread(self._preferences_page, pp, loc, notice)
        await self._html(send, 200, loc, body, method == "HEAD")

    def _list_ids(self, pp: PreferencesPayload) -> list[str]:
        """The lists shown: the sender's declared lists, then any other this
        person's events or opt-outs name, and the one the link came from."""
        ids = list(self.pages.lists)
        for j in [pp.job, *self.store.lists_seen(pp.recipient)]:
            if j and j not in ids:
                ids.append(j)
        return ids

    def _preferences_post(
        self, scope: Scope, pp: PreferencesPayload, fields: dict[str, list[str]]
    ) -> None:
        st, addr = self.store, pp.recipient

        def event(kind: TrackKind, job: str) -> None:
            st.record(
                self._event(
                    scope, kind, message_id="", recipient=addr, job=job, sent_at=pp.issued_at
                )
            )

        known = self._list_ids(pp)
        off = st.list_suppressions(addr)
        wanted = set(fields.get("list", []))
        for lid in dict.fromkeys(fields.get("shown", [])):
            if lid not in known:
                continue
            o = off.get(lid)
            if lid in wanted and o is not None:
                if self._undoable(o.reason, o.at):
                    st.unsuppress_list(addr, lid)
                    event("resubscribe-list", lid)
            elif lid not in wanted and o is None:
                st.suppress_list(addr, lid)
                event("unsubscribe-list", lid)
        g = st.suppression(addr)
        stop = fields.get("stop_all") == ["1"]
        if stop and g is None:
            st.suppress(addr, reason="unsubscribe", job=pp.job)
            event("unsubscribe", pp.job)
        elif not stop and g is not None and self._undoable(g.reason, g.at):
            st.unsuppress(addr)
            event("resubscribe", pp.job)
        objects = fields.get("no_tracking") == ["1"]
        if st.set_tracking_objection(addr, objects):
            self._objections.set(addr, objects)
            event("objection" if objects else "objection-withdrawn", pp.job)

    def _preferences_page(self, pp: PreferencesPayload, loc: Locale, notice: str) -> bytes:
        data, values = self._state(pp.recipient, pp.job, loc)
        t = self.pages.texts(loc, values)
        off = data["off"]
        lists = []
        for n, lid in enumerate(self._list_ids(pp), 1):
            info = self.pages.lists.get(lid)
            o = off.get(lid)
            lists.append(
                {
                    "n": n,
                    "id": lid,
                    "name": self.pages.list_name(lid),
                    "description": info.description if info is not None else "",
                    "checked": o is None,
                    "locked": o is not None and not self._undoable(o.reason, o.at),
                }
            )
        all_off = data["all_off"]
        return self.pages.render(
            "preferences",
            loc,
            t,
            title=t["prefs_title"],
            notice=t.get(notice, ""),
            lists=lists,
            all_off=all_off,
            all_locked=bool(all_off) and not all_off["can_undo"],
            no_tracking=self.store.objects_to_tracking(pp.recipient),
        )


__all__ = ["GIF", "TrackingApp", "form_fields", "is_one_click", "location"]
