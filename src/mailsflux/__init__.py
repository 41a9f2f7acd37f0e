"""Mailsflux: personalised, DKIM-signed, tracked mail over SMTP, fast.

A message passes the stages in this order, one subpackage each:
:mod:`mailsflux.compose` (templates, MIME, addresses), :mod:`mailsflux.dkim`
(signing, keys), :mod:`mailsflux.tracking` (links, pixel, unsubscribe, the
tracking server and event store), :mod:`mailsflux.delivery` (scheduler,
SMTP, MX, throttles, bounce classification); :mod:`mailsflux.jobs` runs a
job file through all of them; :mod:`mailsflux.engine` puts them behind one
API. The Engine, its Config and Message, the result types and the errors
are here.
"""

from typing import TYPE_CHECKING, Any

from mailsflux.errors import (
    AccessError,
    AddressError,
    ConfigError,
    DeliveryError,
    DKIMError,
    DKIMKeyError,
    HeaderError,
    HeaderInjectionError,
    JobFileError,
    MailsfluxError,
    MissingVariableError,
    NotFoundError,
    OutputError,
    PermanentDeliveryError,
    PermanentRoutingError,
    RecipientError,
    RoutingError,
    SchedulerClosedError,
    SpoolError,
    TemplateError,
    TemplateSyntaxError,
    TemporaryDeliveryError,
    TemporaryRoutingError,
    ThrottleBackendError,
)
from mailsflux.events import Event, EventDetails, EventType
from mailsflux.types import (
    DeliveryResult,
    DeliveryStatus,
    JobSummary,
    Problem,
    Recipient,
    RenderedMessage,
)

if TYPE_CHECKING:
    from mailsflux.engine import (
        Attachment,
        Batch,
        Config,
        Delivery,
        DKIMKey,
        DomainLimits,
        Engine,
        JobHandle,
        Message,
        SyncEngine,
        Tracking,
    )

__version__ = "0.1.0"

#: Loaded on first use: the engine stage imports every other stage (SMTP, DNS,
#: crypto), which a command such as ``mailsflux sign`` has no need to load.
_ENGINE = frozenset(
    {
        "Attachment",
        "Batch",
        "Config",
        "DKIMKey",
        "Delivery",
        "DomainLimits",
        "Engine",
        "JobHandle",
        "Message",
        "SyncEngine",
        "Tracking",
    }
)

if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> Any:
        if name in _ENGINE:
            import mailsflux.engine

            return getattr(mailsflux.engine, name)
        raise AttributeError(f"module 'mailsflux' has no attribute {name!r}")


__all__ = [
    "AccessError",
    "AddressError",
    "Attachment",
    "Batch",
    "Config",
    "ConfigError",
    "DKIMError",
    "DKIMKey",
    "DKIMKeyError",
    "Delivery",
    "DeliveryError",
    "DeliveryResult",
    "DeliveryStatus",
    "DomainLimits",
    "Engine",
    "Event",
    "EventDetails",
    "EventType",
    "HeaderError",
    "HeaderInjectionError",
    "JobFileError",
    "JobHandle",
    "JobSummary",
    "MailsfluxError",
    "Message",
    "MissingVariableError",
    "NotFoundError",
    "OutputError",
    "PermanentDeliveryError",
    "PermanentRoutingError",
    "Problem",
    "Recipient",
    "RecipientError",
    "RenderedMessage",
    "RoutingError",
    "SchedulerClosedError",
    "SpoolError",
    "SyncEngine",
    "TemplateError",
    "TemplateSyntaxError",
    "TemporaryDeliveryError",
    "TemporaryRoutingError",
    "ThrottleBackendError",
    "Tracking",
    "__version__",
]
