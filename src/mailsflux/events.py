"""The one event schema: what happened to a message, wherever it is read.

``GET /v1/events``, ``GET /v1/messages/{id}`` and webhooks all carry
:class:`Event`; a tenant's log stores it. Every event names its tenant,
message and job, and has an id that is unique within the tenant and grows
with time (``evt_<n>``; ``n`` is the position in the tenant's log), so a
receiver that may see an event twice (webhooks are at least once) drops
the second by ``(tenant, id)``.
"""

from __future__ import annotations

import os
import time
from typing import Literal, get_args

import msgspec

from mailsflux.types import DeliveryResult

EventType = Literal[
    "queued",
    "delivered",
    "deferred",
    "bounced",
    "failed",
    "opened",
    "clicked",
    "unsubscribed",
    "complained",
    "suppressed",
    "rejected",
    "auto_replied",
    # Letters (mailsflux.letters): what the carrier reports; "delivered" is
    # shared with email, the rest are a letter's own.
    "letter_submitted",
    "printed",
    "in_transit",
    "returned",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
_PREFIX = "evt_"


class EventDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What an event's type has to say; fields that do not apply are left out.

    Logs store these by position: a new field goes at the end."""

    #: delivered, deferred, bounced, failed: the SMTP reply code.
    code: int | None = None
    #: The enhanced status code (``5.1.1``), from the reply or a bounce report.
    enhanced_status: str | None = None
    #: The reply's text, or why a job row was rejected.
    reply: str = ""
    #: Why, in one word: ``bad_mailbox``, ``mailbox_full``, ``policy``,
    #: ``invalid`` (a rejected row), ``unsubscribe`` (suppressed), ...
    category: str = ""
    #: bounced: permanent (the address is suppressed) or not.
    hard: bool | None = None
    #: clicked: the link followed.
    url: str = ""
    #: opened, clicked: the reader's user agent.
    user_agent: str = ""
    #: complained: the ARF feedback type (``abuse``, ``fraud``, ...).
    feedback_type: str = ""
    #: unsubscribed: ``all`` mail of the sender, or the ``list`` (the job).
    scope: str = ""
    #: bounced, complained (from a report): the address the report named,
    #: when it differs from the one the VERP token names; where it came from.
    reported_recipient: str = ""
    source: str = ""
    #: Letters: the carrier adapter (``file``, ``http``) and its tracking number.
    carrier: str = ""
    tracking_number: str = ""


class Event(msgspec.Struct, kw_only=True):
    """One thing that happened to one message for one recipient."""

    #: ``evt_<n>``: unique within the tenant, increasing.
    id: str
    type: EventType
    #: When, in seconds since the epoch (UTC).
    time: float
    tenant: str
    message_id: str
    #: The job the message belongs to (None: a single message).
    job: str | None = None
    #: The email address; for a letter, the recipient's reference in its job
    #: (the id column), never the postal address.
    recipient: str = ""
    details: EventDetails = msgspec.field(default_factory=EventDetails)

    @property
    def position(self) -> int:
        """The event's place in its tenant's log (what cursors hold)."""
        return position(self.id)


def event_id(position: int) -> str:
    return f"{_PREFIX}{position}"


def position(event_id: str) -> int:
    """``evt_17`` -> 17."""
    return int(event_id.removeprefix(_PREFIX))


_last_stream_id = 0


def stream_id() -> str:
    """An id for an event written to a file rather than a log (``send
    --events``, ``bounces ingest --events``): no position to take, so the
    time in nanoseconds, three digits of the process id, and never the same
    twice in a process; it grows with time like a log's."""
    global _last_stream_id
    n = time.time_ns() * 1000 + os.getpid() % 1000
    _last_stream_id = n = max(n, _last_stream_id + 1000)
    return event_id(n)


def result_event(
    r: DeliveryResult, *, job: str | None, tenant: str = "", id: str = "", at: float = 0.0
) -> Event:
    """A delivery result as an event (a skipped row is ``suppressed``: it was
    not sent because it was suppressed or settled before)."""
    return Event(
        id=id or stream_id(),
        type="suppressed" if r.status == "skipped" else r.status,
        time=at or time.time(),
        tenant=tenant,
        message_id=r.message_id,
        job=job,
        recipient=r.recipient,
        details=EventDetails(
            code=r.code, enhanced_status=r.enhanced_status, reply=r.reply, category=r.category
        ),
    )
