"""The events file: one JSON line per final result, never any message content."""

from __future__ import annotations

import time
from typing import IO

import msgspec

from mailsflux.types import DeliveryResult, Event


class EventLog:
    """Appends events as JSON lines; never holds message content."""

    def __init__(self, fh: IO[bytes] | None, job: str) -> None:
        self.fh = fh
        self.job = job
        self.enc = msgspec.json.Encoder()

    def result(self, r: DeliveryResult) -> None:
        if self.fh is None:
            return
        ev = Event(
            kind=r.status,
            at=time.time(),
            message_id=r.message_id,
            recipient=r.recipient,
            job=self.job,
            code=r.code,
            enhanced_status=r.enhanced_status,
            detail=r.reply,
        )
        self.fh.write(self.enc.encode(ev) + b"\n")
