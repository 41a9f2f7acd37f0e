"""Mailsflux: personalised, DKIM-signed, tracked mail over SMTP, fast.

A message passes the stages in this order, one subpackage each:
:mod:`mailsflux.compose` (templates, MIME, addresses), :mod:`mailsflux.dkim`
(signing, keys), :mod:`mailsflux.tracking` (links, pixel, unsubscribe, the
tracking server and event store), :mod:`mailsflux.delivery` (scheduler,
SMTP, MX, throttles, bounce classification); :mod:`mailsflux.jobs` runs a
job file through all of them. The types and the errors are here.
"""

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
from mailsflux.types import DeliveryResult, Event, JobSummary, Problem, Recipient, RenderedMessage

__version__ = "0.1.0"

__all__ = [
    "AddressError",
    "ConfigError",
    "DKIMError",
    "DKIMKeyError",
    "DeliveryError",
    "DeliveryResult",
    "Event",
    "HeaderError",
    "HeaderInjectionError",
    "JobFileError",
    "JobSummary",
    "MailsfluxError",
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
    "TemplateError",
    "TemplateSyntaxError",
    "TemporaryDeliveryError",
    "TemporaryRoutingError",
    "ThrottleBackendError",
    "__version__",
]
