"""The public message to send, built in code, and a batch of them."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from mailsflux.types import Recipient


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A file to attach (or, in ``Message.inline_images``, an image the HTML
    shows as ``<img src="cid:NAME">``): bytes, or a path (relative to the
    config's ``base``), read once when a message holding it is first sent:
    the Engine keeps each distinct message template compiled."""

    content: bytes | Path
    #: Defaults to the path's name; needed for bytes attachments.
    filename: str = ""
    #: Defaults to a guess from the file name.
    content_type: str | None = None

    @property
    def name(self) -> str:
        if self.filename or isinstance(self.content, bytes):
            return self.filename
        return self.content.name


class Message(msgspec.Struct, kw_only=True):
    """One message to send: ``await engine.send(Message(...))``.

    ``sender`` and ``to`` are ``addr`` or ``Name <addr>``. With
    ``template=True`` (the default) ``subject``, ``sender``, ``html`` and
    ``text`` are Mustache templates rendered with ``data``; with
    ``template=False`` they are sent as they are. ``tags`` and ``metadata``
    come back on the message's :class:`~mailsflux.DeliveryResult`.
    """

    sender: str
    to: str
    subject: str
    html: str | None = None
    text: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    template: bool = True
    reply_to: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    #: ``{"logo": Attachment(content=Path("logo.png"))}`` for ``cid:logo``.
    inline_images: dict[str, Attachment] = msgspec.field(default_factory=dict)
    #: A List-Unsubscribe template (RFC 2369), without tracking.
    list_unsubscribe: str | None = None
    missing_variables: Literal["error", "empty"] = "error"
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


#: A recipient row: an address, ``Name <addr>``, a mapping with ``email``
#: (and optionally ``name``) plus template variables, or a Recipient.
Row = str | Mapping[str, Any] | Recipient


class Batch(msgspec.Struct, kw_only=True):
    """A batch job built in code: one template message, many recipients.

    ``template.to`` is ignored; each row gives the recipient and its data
    (merged over ``template.data``). Rows may be any iterable or async
    iterable and are read as they are sent, never all at once.
    """

    template: Message
    recipients: Iterable[Row] | AsyncIterable[Row]
    name: str = ""


__all__ = ["Attachment", "Batch", "Message", "Row"]
