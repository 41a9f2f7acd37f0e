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

# The engine stage imports every other stage (none of them imports this module).
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
from mailsflux.errors import (
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
    OutputError,
    PermanentDeliveryError,
    PermanentRoutingError,
    RecipientError,
    RoutingError,
    SchedulerClosedError,
    TemplateError,
    TemplateSyntaxError,
    TemporaryDeliveryError,
    TemporaryRoutingError,
    ThrottleBackendError,
)
from mailsflux.types import (
    DeliveryResult,
    DeliveryStatus,
    Event,
    JobSummary,
    Problem,
    Recipient,
    RenderedMessage,
)

__version__ = "0.1.0"

__all__ = [
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
    "HeaderError",
    "HeaderInjectionError",
    "JobFileError",
    "JobHandle",
    "JobSummary",
    "MailsfluxError",
    "Message",
    "MissingVariableError",
    "OutputError",
    "PermanentDeliveryError",
    "PermanentRoutingError",
    "Problem",
    "Recipient",
    "RecipientError",
    "RenderedMessage",
    "RoutingError",
    "SchedulerClosedError",
    "SyncEngine",
    "TemplateError",
    "TemplateSyntaxError",
    "TemporaryDeliveryError",
    "TemporaryRoutingError",
    "ThrottleBackendError",
    "Tracking",
    "__version__",
]
