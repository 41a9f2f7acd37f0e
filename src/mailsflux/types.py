"""The records that flow through a job, as msgspec Structs.

Structs are frozen where they cross a task or process boundary, so a
message queued for delivery cannot be changed under the sender's feet.
"""

from __future__ import annotations

from typing import Literal

import msgspec

DeliveryStatus = Literal["delivered", "deferred", "bounced", "failed", "skipped", "suppressed"]


class Recipient(msgspec.Struct, frozen=True, gc=False):
    """One row of a recipient file: the address plus its merge variables."""

    email: str
    vars: dict[str, str]
    #: 1-based line of the row in its file, for error reports.
    row: int = 0


class RenderedMessage(msgspec.Struct, frozen=True, gc=False):
    """A finished message, ready for the SMTP envelope."""

    mail_from: str
    rcpt_to: str
    data: bytes
    message_id: str
    row: int = 0
    #: True only when an address's local part is non-ASCII (RFC 6531).
    smtputf8: bool = False

    @property
    def domain(self) -> str:
        return self.rcpt_to.rpartition("@")[2].lower()


class DeliveryResult(msgspec.Struct, frozen=True, gc=False):
    """What happened to one message."""

    recipient: str
    message_id: str
    status: DeliveryStatus
    code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""
    attempts: int = 1
    row: int = 0
    #: What the reply means (mailsflux.delivery.Category), e.g. "bad_mailbox".
    category: str = ""
    #: The sender's own labels from :class:`mailsflux.Message`, carried through.
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def domain(self) -> str:
        return self.recipient.rpartition("@")[2].lower()


class Problem(msgspec.Struct, frozen=True):
    """One finding of ``mailsflux validate`` or a skipped row."""

    where: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


class TLSCounts(msgspec.Struct):
    """TLS-RPT-style counts (RFC 8460 4.4) of one destination domain's sessions.

    ``policy`` is ``dane``, ``sts`` (MTA-STS enforce), ``sts-testing`` or
    ``no-policy-found``; ``failures`` counts by RFC 8460 result type
    (``starttls-not-supported``, ``certificate-host-mismatch``,
    ``certificate-not-trusted``, ``certificate-expired``, ``tlsa-invalid``,
    ``validation-failure``, ``sts-policy-fetch-error``, ...).
    """

    policy: str = "no-policy-found"
    success: int = 0
    failure: int = 0
    failures: dict[str, int] = msgspec.field(default_factory=dict)


class JobSummary(msgspec.Struct):
    """The final tally of a job."""

    job: str
    total: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    #: Rows set aside unsent in a batch no worker could open (``send --redis``:
    #: its batches failed to authenticate); a job with any did not finish well.
    quarantined: int = 0
    per_domain: dict[str, int] = msgspec.field(default_factory=dict)
    #: True when a stop (SIGINT, SIGTERM) ended the job early: the counts are partial.
    interrupted: bool = False
    #: Results that could not be fully recorded (event log, suppression list
    #: or the caller's callback failed); their delivery stands regardless.
    record_failures: int = 0
    #: The first such failure, e.g. "events file: OSError: [Errno 28] ...".
    record_error: str = ""
    #: Rows an earlier, interrupted run of the job settled (not sent again).
    resumed: int = 0
    #: Per destination domain with an MTA-STS or DANE policy: TLS sessions
    #: that met it and failures by kind (direct MX delivery only).
    tls: dict[str, TLSCounts] = msgspec.field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0
