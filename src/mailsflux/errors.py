"""The error hierarchy: one root, builtin mixins, structured fields.

Every error says whether retrying could help (``permanent``), and carries
the structured context a front end needs to show it without parsing the
message: the file and line, the field or header, the recipient and row, and
for SMTP the reply code and enhanced status (RFC 3463).
"""

from __future__ import annotations


class MailsfluxError(Exception):
    """Root of every error Mailsflux raises on purpose."""

    #: True when repeating the same operation cannot succeed.
    permanent: bool = True

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
        recipient: str | None = None,
        row: int | None = None,
        code: int | None = None,
        enhanced_status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.recipient = recipient
        self.row = row
        self.code = code
        self.enhanced_status = enhanced_status

    @property
    def temporary(self) -> bool:
        return not self.permanent

    def location(self) -> str:
        """``file:line:column`` as far as known, else the field, else ``""``."""
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
        elif self.row is not None:
            where = f"row {self.row}"
        return where

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


class ConfigError(MailsfluxError, ValueError):
    """A job file or setting is missing or malformed."""


class JobFileError(ConfigError):
    """The job file itself cannot be read, parsed or validated."""


class TemplateError(MailsfluxError, ValueError):
    """A template cannot be compiled or rendered."""


class TemplateSyntaxError(TemplateError):
    """A template does not parse; ``line`` and ``column`` point at the fault."""


class MissingVariableError(TemplateError, KeyError):
    """A strict template referenced a variable the data does not hold."""

    def __init__(self, message: str, *, variable: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.variable = variable

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return MailsfluxError.__str__(self)


class RecipientError(MailsfluxError, ValueError):
    """A recipient row is unusable (bad address, missing variable, ...).

    The job reports and skips the row; it never stops the job.
    """


class AddressError(RecipientError):
    """An email address does not parse or cannot be encoded."""


class HeaderError(MailsfluxError, ValueError):
    """A header name or value is refused; ``field`` names the header."""


class HeaderInjectionError(HeaderError):
    """A header value holds CR or LF, which would let it forge other headers."""


class DKIMError(MailsfluxError):
    """A message cannot be DKIM-signed."""


class DKIMKeyError(DKIMError, ValueError):
    """A DKIM private key is missing, malformed or of the wrong kind."""


class AuthenticationError(MailsfluxError):
    """A job's SPF, DKIM or DMARC records fail its ``[delivery] authentication``
    check (or DNS could not be asked): the job does not start."""


class OutputError(MailsfluxError):
    """An output file or folder cannot be written; ``file`` names it."""


class DeliveryError(MailsfluxError, ConnectionError):
    """An SMTP delivery failed; ``code``/``enhanced_status`` hold the reply."""


class TemporaryDeliveryError(DeliveryError):
    """4xx, timeout or dropped connection: retrying later may succeed."""

    permanent = False


class PermanentDeliveryError(DeliveryError):
    """5xx: the receiver refused for good."""


class ThrottleBackendError(TemporaryDeliveryError):
    """The throttle backend (Redis) cannot be reached or refused the command.

    Temporary: nothing was granted, so the caller defers; it never sends
    without a grant.
    """


class SchedulerClosedError(MailsfluxError, RuntimeError):
    """The scheduler was closed: it takes no more messages and closes only once."""


class RoutingError(DeliveryError):
    """No route to a domain; ``domain`` names it (ASCII form)."""

    def __init__(
        self,
        message: str,
        *,
        domain: str,
        enhanced_status: str | None = None,
        code: int | None = None,
        ttl: float | None = None,
    ) -> None:
        super().__init__(message, code=code, enhanced_status=enhanced_status)
        self.domain = domain
        #: How long the resolver keeps this answer (negative caching), seconds.
        self.ttl = ttl


class PermanentRoutingError(RoutingError, PermanentDeliveryError):
    """The domain cannot receive mail: NXDOMAIN, null MX, no address at all."""

    permanent = True


class TemporaryRoutingError(RoutingError, TemporaryDeliveryError):
    """The lookup failed for now: SERVFAIL, REFUSED, timeout."""

    permanent = False


class SpoolError(MailsfluxError, OSError):
    """The spool cannot be opened, read or written (a full disk, a bad key file,
    a job whose recipient file changed since it was interrupted)."""

    permanent = False


class AccessError(MailsfluxError, PermissionError):
    """A caller may not do this: an unknown or revoked key (``code`` 401), a
    role or sending domain the key's tenant lacks (403)."""

    permanent = True


class NotFoundError(MailsfluxError, LookupError):
    """No such job, message or key for this caller: another tenant's ids are
    reported exactly like ids that do not exist."""

    permanent = True


class PolicyError(MailsfluxError):
    """An MTA-STS policy that could not be fetched or parsed (RFC 8461): the
    cached one, if any, stays in force."""


class CarrierError(MailsfluxError, ConnectionError):
    """A letter carrier refused, failed or could not be reached; ``code`` is
    its HTTP status where there was one. 429 and 5xx are temporary."""

    permanent = False


class MissingExtraError(ConfigError):
    """An optional part of Mailsflux is used without its extra installed
    (``pip install 'mailsflux[letters]'``)."""


__all__ = [
    "AccessError",
    "AddressError",
    "CarrierError",
    "ConfigError",
    "DKIMError",
    "DKIMKeyError",
    "DeliveryError",
    "HeaderError",
    "HeaderInjectionError",
    "JobFileError",
    "MailsfluxError",
    "MissingExtraError",
    "MissingVariableError",
    "NotFoundError",
    "OutputError",
    "PermanentDeliveryError",
    "PermanentRoutingError",
    "PolicyError",
    "RecipientError",
    "RoutingError",
    "SchedulerClosedError",
    "SpoolError",
    "TemplateError",
    "TemplateSyntaxError",
    "TemporaryDeliveryError",
    "TemporaryRoutingError",
    "ThrottleBackendError",
]
