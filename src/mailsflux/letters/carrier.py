"""What a carrier is asked and answers, the same for every carrier.

Shaped after the print-and-mail APIs carriers offer (create a letter from a
PDF and an address, read its tracking events, cancel it before it is
printed). A :class:`Submission` is all a carrier ever gets: the letter's
id, the address, the rendered PDF and the service asked for; never the
recipient's email, the merge data or the template.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Protocol

import msgspec

from mailsflux.letters.address import PostalAddress

#: A letter's life at a carrier, in order; returned and cancelled end it
#: like delivered does.
Status = Literal[
    "submitted", "printed", "in_transit", "delivered", "returned", "cancelled", "failed"
]
FINAL: frozenset[str] = frozenset({"delivered", "returned", "cancelled", "failed"})
ORDER = ("submitted", "printed", "in_transit", "delivered", "returned", "cancelled", "failed")


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    #: Ours; carriers echo it and use it to drop a repeated submission.
    letter_id: str
    address: PostalAddress
    pdf: bytes
    paper: str
    mail_class: str = "standard"
    color: bool = False


class Update(msgspec.Struct, frozen=True, kw_only=True):
    """One tracking event at the carrier."""

    status: Status
    time: float
    tracking_number: str = ""


class Carrier(Protocol):
    """A carrier adapter."""

    name: str

    def submit(self, s: Submission) -> str:
        """Hand the letter over; the carrier's id for it."""
        ...

    def status(self, carrier_id: str) -> list[Update]:
        """Every tracking event so far, oldest first."""
        ...

    def cancel(self, carrier_id: str) -> bool:
        """Withdraw the letter; False when it is too late (printed)."""
        ...


#: Past this a number is milliseconds, not seconds (1e11 s is the year 5138).
_MS = 1e11


def carrier_time(value: float | str) -> float:
    """A carrier's timestamp as Unix seconds: a number of seconds or of
    milliseconds, or an ISO 8601 string (a time without offset is UTC).
    ValueError when it is none of these."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            at = datetime.fromisoformat(text)  # ValueError when not ISO 8601
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            return at.timestamp()
    if value != value or value < 0:  # NaN or negative
        raise ValueError(f"not a time: {value!r}")
    return value / 1000 if value > _MS else float(value)
