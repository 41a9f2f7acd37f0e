"""The HTTP API: a plain ASGI application over the :class:`~mailsflux.gateway.Gateway`.

Routes (``Authorization: Bearer mfx.<id>.<secret>`` on every ``/v1`` route
but the OpenAPI document):

- ``POST /v1/messages``: one message -> 202 ``{"id"}`` once it is stored.
- ``POST /v1/jobs``: a template and recipients -> 202 ``{"id"}`` once stored.
- ``GET /v1/jobs/{id}``, ``POST /v1/jobs/{id}/cancel``.
- ``POST /v1/letters``: a template and postal addresses -> 200 with counts and
  problems once the PDFs are handed to the carrier (``[letters]``).
- ``GET /v1/messages/{id}``: state and events.
- ``PUT|GET /v1/templates/{id}``: a stored template, for ``template_id``.
- ``GET /v1/events?cursor=C&limit=N``: events after a cursor, oldest first.
- ``POST /v1/privacy/{export|erase|correct|object}`` (admin role): a
  person's rights in the caller's tenant.
- ``GET /v1/openapi.json``, ``/healthz``, ``/readyz``. ``/metrics`` is on its
  own listener (:class:`MetricsApp`): it shows every tenant's numbers.

Bodies are decoded by msgspec into the structs of :mod:`mailsflux.api.types`
(unknown fields refused; an error names the field's path). A POST with an
``Idempotency-Key`` is answered once: a retry gets the first answer and
sends nothing. Every response carries ``X-Request-Id`` (the client's, when
it sent a sane one); each request is logged as one JSON line without
addresses or content.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import IO, Any
from urllib.parse import parse_qs

import msgspec
from python_multipart.exceptions import MultipartParseError

from mailsflux.api.openapi import openapi_document
from mailsflux.api.types import (
    Accepted,
    ErrorDetail,
    ErrorOut,
    EventsOut,
    JobIn,
    LettersIn,
    LettersOut,
    MessageIn,
    MessageOut,
    PrivacyIn,
    ProblemOut,
    TemplateIn,
    TemplateOut,
)
from mailsflux.api.upload import FILE_FIELD, TooLarge, boundary_of, csv_rows, read_form
from mailsflux.engine import Attachment, Message
from mailsflux.errors import (
    AccessError,
    MailsfluxError,
    NotFoundError,
    SchedulerClosedError,
    SpoolError,
)
from mailsflux.gateway import Gateway, request_digest
from mailsflux.tenants import KeyStore, Principal

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_AT = re.compile(r" - at `([^`]*)`$")
_JSON = [(b"content-type", b"application/json")]
_MESSAGE = msgspec.json.Decoder(MessageIn)
_JOB = msgspec.json.Decoder(JobIn)
_LETTERS = msgspec.json.Decoder(LettersIn)
_TEMPLATE = msgspec.json.Decoder(TemplateIn)
_PRIVACY = msgspec.json.Decoder(PrivacyIn)
#: What a message may take from a stored template (and give itself instead).
_OVERRIDABLE = (
    "sender", "subject", "html", "text", "reply_to", "headers", "list_unsubscribe",
    "missing_variables", "tags", "metadata",
)  # fmt: skip
_enc = msgspec.json.Encoder()


class _Answer(Exception):
    """An error answer: status, code and message (and the field)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class ApiApp:
    """The ASGI application (``uvicorn`` serves it inside ``mailsflux serve``)."""

    def __init__(
        self,
        gateway: Gateway,
        keys: KeyStore,
        *,
        cursor_key: bytes | None = None,
        max_body: int = 10 << 20,
        max_job_body: int = 64 << 20,
        max_upload: int = 1 << 30,
        log: IO[str] | None = sys.stderr,
        version: str = "",
    ) -> None:
        self.gateway = gateway
        self.keys = keys
        self.cursor_key = cursor_key or secrets.token_bytes(32)
        self.max_body = max_body
        self.max_job_body = max_job_body
        self.max_upload = max_upload
        self.log = log
        self._openapi = json.dumps(openapi_document(version or _version())).encode()
        self._hashing = asyncio.Semaphore(2)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        principal: Principal | None = None
        extra: list[tuple[bytes, bytes]] = []
        try:
            principal = await self._principal(scope["path"], headers)
            status, body, extra, ctype = await self._route(scope, receive, headers, principal)
        except _Answer as a:
            status, ctype, body = a.status, _JSON, _error_body(a, rid)
        except asyncio.CancelledError:
            # A stop that could not wait for this request (a client too slow
            # to send its body): nothing was stored for it; end quietly.
            return
        except Exception as exc:  # a bug: the client gets a request id, the log the type
            print(f"mailsflux: request {rid} failed: {type(exc).__name__}", file=sys.stderr)
            bug = _Answer(500, "internal", "the server failed on this request; it is logged")
            status, ctype, body = 500, _JSON, _error_body(bug, rid)
        if status >= 400:
            code = json.loads(body)["error"]["code"] if ctype is _JSON else "other"
            self.gateway.metrics.refused.labels("http", code).inc()
        out = [*ctype, (b"x-request-id", rid.encode()), *extra]
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
        elapsed = time.perf_counter() - started
        self.gateway.metrics.latency.labels("http").observe(elapsed)
        if self.log is not None:
            line = {
                "time": round(time.time(), 3),
                "request_id": rid,
                "method": scope["method"],
                "path": _route_name(scope["path"]),
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "tenant": principal.tenant if principal else None,
                "key": principal.key_id if principal else None,
            }
            self.log.write(json.dumps(line) + "\n")

    # -- parts -------------------------------------------------------------------

    async def _principal(self, path: str, headers: dict[bytes, bytes]) -> Principal | None:
        if not path.startswith("/v1/") or path == "/v1/openapi.json":
            return None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Answer(401, "unauthenticated", "send Authorization: Bearer <API key>")
        token = token.strip()
        if self.keys.warm(token):
            principal = self.keys.authenticate(token)
        else:
            # A first use (or a wrong secret) hashes: tens of ms and 64 MB, so
            # not on the event loop, and two at a time at most.
            async with self._hashing:
                principal = await asyncio.to_thread(self.keys.authenticate, token)
        if principal is None:
            raise _Answer(401, "unauthenticated", "unknown or revoked API key")
        return principal

    async def _body(self, receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Answer(413, "too_large", f"the body is over {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Answer(400, "disconnected", "the client went away before the body ended")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Answer(413, "too_large", f"the body is over {limit} bytes")
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def _route(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], who: Principal | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        method, path = scope["method"], scope["path"]
        if path == "/healthz":
            return 200, b'{"status":"ok"}', [], _JSON
        if path == "/readyz":
            ready = self.gateway.ready
            return (
                (200 if ready else 503),
                b'{"ready":%s}' % (b"true" if ready else b"false"),
                [],
                _JSON,
            )
        if path == "/v1/openapi.json":
            return 200, self._openapi, [], _JSON
        if who is None:
            raise _Answer(404, "not_found", "no such route")
        parts = path.strip("/").split("/")
        try:
            if method == "POST" and path == "/v1/messages":
                return await self._idempotent(scope, receive, headers, who, self._post_message)
            if method == "POST" and path == "/v1/jobs":
                boundary = boundary_of(headers.get(b"content-type", b""))
                if boundary is not None:
                    return await self._post_job_form(receive, headers, who, boundary)
                return await self._idempotent(scope, receive, headers, who, self._post_job)
            if method == "POST" and path == "/v1/letters":
                body = await self._body(receive, headers, self.max_job_body)
                digest = request_digest(body, method, path)

                async def letters(key: str) -> tuple[int, bytes]:
                    return 200, await self._post_letters(who, body, key)

                return await self._once_answer(headers, who, digest, letters)
            if method == "GET" and len(parts) == 3 and parts[1] == "jobs":
                job = self.gateway.job(who, parts[2])
                return (
                    200,
                    _enc.encode(job),
                    [],
                    _JSON,
                )
            if method == "POST" and len(parts) == 4 and parts[1] == "jobs" and parts[3] == "cancel":
                job = await self.gateway.cancel_job(who, parts[2])
                return (
                    200,
                    _enc.encode(job),
                    [],
                    _JSON,
                )
            if len(parts) == 3 and parts[1] == "templates":
                if method == "PUT":
                    body = await self._body(receive, headers, self.max_body)
                    return 200, await self._put_template(who, parts[2], body), [], _JSON
                if method == "GET":
                    raw, updated = self.gateway.template(who, parts[2])
                    stored = TemplateOut(
                        id=parts[2], template=_TEMPLATE.decode(raw), updated=updated
                    )
                    return 200, _enc.encode(stored), [], _JSON
            if method == "GET" and len(parts) == 3 and parts[1] == "messages":
                events = self.gateway.message(who, parts[2])
                out = MessageOut(id=parts[2], state=events[-1].type, events=events)
                return 200, _enc.encode(out), [], _JSON
            if method == "POST" and len(parts) == 3 and parts[1] == "privacy":
                if parts[2] not in ("export", "erase", "correct", "object"):
                    raise _Answer(404, "not_found", "no such route")
                body = await self._body(receive, headers, self.max_body)
                try:
                    req = _PRIVACY.decode(body)
                except msgspec.MsgspecError as exc:
                    raise _decode_answer(exc) from None
                doc = await self.gateway.privacy(
                    who,
                    parts[2],
                    req.address,
                    to=req.to,
                    withdraw=req.withdraw,
                )
                return 200, _enc.encode(doc), [], _JSON
            if method == "GET" and path == "/v1/events":
                return 200, self._events(scope, who), [], _JSON
        except MailsfluxError as exc:
            raise _answer(exc) from None
        raise _Answer(404, "not_found", "no such route")

    async def _idempotent(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[bytes, bytes],
        who: Principal,
        handler: Callable[[Principal, bytes], Awaitable[str]],
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        limit = self.max_job_body if scope["path"] == "/v1/jobs" else self.max_body
        body = await self._body(receive, headers, limit)
        digest = request_digest(body, scope["method"], scope["path"])
        return await self._once(headers, who, digest, lambda: self._do(handler, who, body))

    async def _once(
        self,
        headers: dict[bytes, bytes],
        who: Principal,
        digest: str,
        action: Callable[[], Awaitable[str]],
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Run ``action`` (which stores something and returns its id) once per
        ``Idempotency-Key``: a retry gets the first answer."""

        async def accepted(_key: str) -> tuple[int, bytes]:
            return 202, _enc.encode(Accepted(id=await action()))

        return await self._once_answer(headers, who, digest, accepted)

    async def _once_answer(
        self,
        headers: dict[bytes, bytes],
        who: Principal,
        digest: str,
        action: Callable[[str], Awaitable[tuple[int, bytes]]],
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Run ``action(key)`` once per ``Idempotency-Key`` (``key`` is "" when
        the request has none) and remember its answer: a retry with the same
        key and request gets it again, marked replayed; the same key with
        another request is 422, and while the first runs 409."""
        key = headers.get(b"idempotency-key", b"").decode("latin-1").strip()
        if not key:
            status, out = await action("")
            return status, out, [], _JSON
        if len(key) > 200:
            raise _Answer(400, "bad_request", "Idempotency-Key is over 200 characters")
        try:
            log = self.gateway.log(who)
        except MailsfluxError as exc:
            raise _answer(exc) from None
        seen = log.answer(key, digest)
        if seen is True:
            raise _Answer(422, "idempotency_key_reused",
                          "this Idempotency-Key was used for a different request")  # fmt: skip
        if seen is False:
            raise _Answer(409, "in_progress", "a request with this Idempotency-Key is running")
        if seen is not None:
            return seen[0], seen[1], [(b"idempotent-replayed", b"true")], _JSON
        try:
            status, out = await action(key)
        except BaseException:
            log.forget_answer(key)  # nothing was stored: a retry may go ahead
            raise
        log.remember(key, status, out)
        return status, out, [], _JSON

    async def _post_job_form(
        self, receive: Receive, headers: dict[bytes, bytes], who: Principal, boundary: bytes
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """``POST /v1/jobs`` as a form: ``template`` (JSON), ``name``, and the
        ``recipients`` CSV, which goes to disk as it arrives."""
        try:
            path = self.gateway.upload_path(who)
        except MailsfluxError as exc:
            raise _answer(exc) from None
        try:
            try:
                up = await read_form(
                    receive, boundary, path, max_field=1 << 20, max_file=self.max_upload
                )
            except TooLarge as exc:
                raise _Answer(413, "too_large", str(exc)) from None
            except (ValueError, MultipartParseError) as exc:  # BadForm too
                raise _Answer(400, "bad_form", f"the form cannot be read: {exc}") from None
            if up.file is None:
                raise _Answer(422, "invalid", "the form has no recipients file", FILE_FIELD)
            raw_template = bytes(up.fields.get("template", b""))
            name = up.fields.get("name", b"").decode("utf-8", "replace")

            async def action() -> str:
                async def handler(who: Principal, body: bytes) -> str:
                    try:
                        template = _TEMPLATE.decode(body)
                    except msgspec.ValidationError as exc:
                        raise msgspec.ValidationError(
                            str(exc).replace("`$", "`template.$")
                        ) from None
                    assert up.file is not None
                    return await self.gateway.submit_job(
                        who, _template(template), csv_rows(up.file), name=name
                    )

                return await self._do(handler, who, raw_template)

            return await self._once(headers, who, "form:" + up.digest.hexdigest(), action)
        finally:
            path.unlink(missing_ok=True)

    async def _do(
        self, handler: Callable[[Principal, bytes], Awaitable[str]], who: Principal, body: bytes
    ) -> str:
        try:
            mid = await handler(who, body)
        except msgspec.MsgspecError as exc:
            raise _decode_answer(exc) from None
        except MailsfluxError as exc:
            raise _answer(exc) from None
        self.gateway.metrics.accepted.labels("http").inc()
        return mid

    async def _post_message(self, who: Principal, body: bytes) -> str:
        m = _MESSAGE.decode(body)
        if m.template_id is not None:
            stored = _TEMPLATE.decode(self.gateway.template(who, m.template_id)[0])
            given = {f: getattr(m, f) for f in m.__struct_fields__ if f in _OVERRIDABLE}
            fields = {k: v for k, v in given.items() if v not in (None, [], {})}
            fields["data"] = {**stored.data, **m.data}
            m = msgspec.structs.replace(
                m, **{k: getattr(stored, k) for k in _OVERRIDABLE if k not in fields}, **fields
            )
        for name in ("sender", "subject"):
            if getattr(m, name) is None:
                raise msgspec.ValidationError(
                    f"Object missing required field `{name}` (or give template_id) - at `$`"
                )
        return await self.gateway.accept(who, _message(m))

    async def _put_template(self, who: Principal, template_id: str, body: bytes) -> bytes:
        try:
            t = _TEMPLATE.decode(body)
        except msgspec.MsgspecError as exc:
            raise _decode_answer(exc) from None
        try:
            updated = self.gateway.put_template(who, template_id, _enc.encode(t))
        except MailsfluxError as exc:
            raise _answer(exc) from None
        return _enc.encode(TemplateOut(id=template_id, template=t, updated=updated))

    async def _post_job(self, who: Principal, body: bytes) -> str:
        j = _JOB.decode(body)
        if (j.template is None) == (j.template_id is None):
            raise msgspec.ValidationError("give template or template_id, not both - at `$`")
        t = j.template
        if t is None:
            assert j.template_id is not None
            t = _TEMPLATE.decode(self.gateway.template(who, j.template_id)[0])

        def rows() -> Iterator[bytes]:
            for r in j.recipients:
                yield _enc.encode(r)

        return await self.gateway.submit_job(who, _template(t), rows(), name=j.name)

    async def _post_letters(self, who: Principal, body: bytes, key: str = "") -> bytes:
        from mailsflux.letters import recipient_of

        try:
            req = _LETTERS.decode(body)
        except msgspec.MsgspecError as exc:
            raise _decode_answer(exc) from None
        rows = [
            recipient_of(
                f"recipients[{i}]", i + 1, r.ref, msgspec.structs.asdict(r.address), r.data
            )
            for i, r in enumerate(req.recipients)
        ]
        refs = [r.ref for r in req.recipients]
        if len(set(refs)) != len(refs):
            raise _Answer(422, "invalid", "each recipient's ref must be unique", "recipients")
        summary, problems = await self.gateway.submit_letters(
            who,
            name=req.name or _letters_name(key),
            template=req.template,
            rows=rows,
            paper=req.paper,
            sender=req.sender,
            origin_country=req.origin_country,
        )
        out = LettersOut(
            job=summary.job,
            submitted=summary.submitted,
            skipped=summary.skipped,
            failed=summary.failed,
            resumed=summary.resumed,
            pending=summary.pending,
            problems=[ProblemOut(where=p.where, what=p.message) for p in problems],
        )
        return _enc.encode(out)

    def _events(self, scope: Scope, who: Principal) -> bytes:
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        after = self._cursor(who, q.get("cursor", [""])[0])
        raw = q.get("limit", ["500"])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise _Answer(400, "bad_request", "limit is a number from 1 to 1000", "limit")
        events = self.gateway.events(who, after, int(raw))
        last = events[-1].position if events else after
        return _enc.encode(EventsOut(events=events, next=self._make_cursor(who, last)))

    def _make_cursor(self, who: Principal, position: int) -> str:
        mac = hmac.new(self.cursor_key, f"{who.tenant}\x00{position}".encode(), hashlib.sha256)
        return f"{position}.{mac.hexdigest()[:16]}"

    def _cursor(self, who: Principal, cursor: str) -> int:
        """The position in a cursor this tenant was given; another tenant's is not found."""
        if not cursor:
            return 0
        pos, _, _ = cursor.partition(".")
        if not pos.isdigit() or not hmac.compare_digest(self._make_cursor(who, int(pos)), cursor):
            raise _Answer(404, "not_found", "no such cursor for this key's tenant", "cursor")
        return int(pos)


def _letters_name(key: str) -> str:
    """The job name of an unnamed letters request. With an Idempotency-Key
    it follows from the key: a retry after a request that failed half way
    (its answer forgotten) resumes the same job, whose letters already
    handed over are not printed twice."""
    if not key:
        return f"letters_{secrets.token_hex(8)}"
    return "letters_" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _error_body(a: _Answer, rid: str) -> bytes:
    detail = ErrorDetail(code=a.code, message=a.message, field=a.field, request_id=rid)
    return _enc.encode(ErrorOut(error=detail))


def _message(m: MessageIn) -> Message:
    assert m.sender is not None and m.subject is not None
    return Message(
        sender=m.sender, to=m.to, subject=m.subject, html=m.html, text=m.text, data=m.data,
        template=m.template, reply_to=m.reply_to, headers=m.headers,
        attachments=[
            Attachment(content=a.content, filename=a.filename, content_type=a.content_type)
            for a in m.attachments
        ],
        list_unsubscribe=m.list_unsubscribe, missing_variables=m.missing_variables,
        tags=tuple(m.tags), metadata=m.metadata,
    )  # fmt: skip


def _template(t: TemplateIn) -> Message:
    return Message(
        sender=t.sender, to="", subject=t.subject, html=t.html, text=t.text, data=t.data,
        reply_to=t.reply_to, headers=t.headers, list_unsubscribe=t.list_unsubscribe,
        missing_variables=t.missing_variables, tags=tuple(t.tags), metadata=t.metadata,
    )  # fmt: skip


def _decode_answer(exc: msgspec.MsgspecError) -> _Answer:
    """A body msgspec refused: 422 naming the field's path, or 400 when it is not JSON."""
    if isinstance(exc, msgspec.ValidationError):
        text = str(exc)
        m = _AT.search(text)
        return _Answer(422, "invalid", _AT.sub("", text), m.group(1) if m else None)
    return _Answer(400, "bad_json", f"the body is not JSON: {exc}")


def _answer(exc: MailsfluxError) -> _Answer:
    """A Mailsflux error as an HTTP answer."""
    if isinstance(exc, NotFoundError):
        return _Answer(404, "not_found", exc.message, exc.field)
    if isinstance(exc, AccessError):
        return _Answer(exc.code or 403, "forbidden", exc.message, exc.field)
    if isinstance(exc, (SpoolError, SchedulerClosedError)) or exc.temporary:
        return _Answer(503, "unavailable", exc.message, exc.field)
    field = exc.field or (exc.location() or None)
    return _Answer(422, "invalid", exc.message, field)


class MetricsApp:
    """``GET /metrics`` (Prometheus text) and ``/healthz``: for the operator's
    listener only (``[http] metrics_listen``), never the tenants' port."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            status, body = 200, self.gateway.metrics.text()
            ctype = b"text/plain; version=0.0.4; charset=utf-8"
        elif scope["path"] == "/healthz":
            status, body, ctype = 200, b'{"status":"ok"}', b"application/json"
        else:
            status, body, ctype = 404, b'{"error":{"code":"not_found"}}', b"application/json"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _route_name(path: str) -> str:
    """The route, without ids (logs and metrics hold no message ids)."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "v1" and parts[1] in ("jobs", "messages", "templates"):
        parts[2] = "{id}"
    return "/" + "/".join(parts)


def _version() -> str:
    from mailsflux import __version__

    return __version__
