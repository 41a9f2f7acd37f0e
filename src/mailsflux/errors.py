"""Public error types; see :mod:`mailsflux._errors` for the hierarchy."""

from mailsflux._errors import (
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
    PermanentDeliveryError,
    RecipientError,
    TemplateError,
    TemplateSyntaxError,
    TemporaryDeliveryError,
    ThrottleBackendError,
)

__all__ = [
    "AddressError",
    "ConfigError",
    "DKIMError",
    "DKIMKeyError",
    "DeliveryError",
    "HeaderError",
    "HeaderInjectionError",
    "JobFileError",
    "MailsfluxError",
    "MissingVariableError",
    "PermanentDeliveryError",
    "RecipientError",
    "TemplateError",
    "TemplateSyntaxError",
    "TemporaryDeliveryError",
    "ThrottleBackendError",
]
