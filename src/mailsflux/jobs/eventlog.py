"""The events file: one JSON line per final result (the one event schema,
:class:`mailsflux.events.Event`), never any message content."""

from __future__ import annotations

from typing import IO

import msgspec

from mailsflux.events import result_event
from mailsflux.types import DeliveryResult


class EventLog:
    """Appends events as JSON lines; never holds message content."""

    def __init__(self, fh: IO[bytes] | None, job: str) -> None:
        self.fh = fh
        self.job = job
        self.enc = msgspec.json.Encoder()

    def result(self, r: DeliveryResult) -> None:
        if self.fh is None:
            return
        self.fh.write(self.enc.encode(result_event(r, job=self.job)) + b"\n")
