"""The HTTP carrier's tracking replies, as carriers really send them: the
first event need not be ``submitted``, an unknown status is skipped and
counted (not a refusal of the reply), times come as ISO 8601 or
milliseconds, and a carrier id with spaces or slashes is URL-quoted."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailsflux.events import Event
from mailsflux.letters import HTTPCarrier, LetterStore, PostalAddress
from mailsflux.letters.run import track
from mailsflux.spool import SpoolKeys
from mailsflux.types import Problem
from tests._loopback import reply_json, serving

CID = "car 1/ä?x"


class Carrier(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.paths: list[str] = []
        self.events: list[dict[str, Any]] = []


class Handler(BaseHTTPRequestHandler):
    server: Carrier

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        reply_json(self, 200, {"id": CID, "tracking_events": self.server.events})


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    with serving(Carrier()) as server:
        yield server


def test_tracking_replies_as_carriers_send_them(tmp_path: Path, carrier: Carrier) -> None:
    adapter = HTTPCarrier(f"http://127.0.0.1:{carrier.server_address[1]}", "k", attempts=1)
    store = LetterStore(tmp_path / "state", SpoolKeys.generate())
    store.add("ltr_1", "job", "c1", PostalAddress(country_code="DE"), "http")
    store.submitted("ltr_1", CID)
    carrier.events = [
        {"type": "printed", "time": "2023-11-14T22:13:20Z"},
        {"type": "mailpiece_scanned", "time": 1700000050},
        {"type": "in_transit", "time": 1700000060000, "tracking_number": "TN1"},
    ]
    events: list[Event] = []
    problems: list[Problem] = []
    assert track(store, adapter, events.append, problems.append) == 2
    assert [(e.type, e.time, e.details.tracking_number) for e in events] == [
        ("printed", 1_700_000_000.0, ""),
        ("in_transit", 1_700_000_060.0, "TN1"),
    ]
    assert carrier.paths == ["/v1/letters/car%201%2F%C3%A4%3Fx"]
    assert len(problems) == 1 and "1 tracking events with an unknown status" in str(problems[0])
    carrier.events.append({"type": "delivered", "time": 1700000100})
    track(store, adapter, events.append, problems.append)
    assert [e.type for e in events] == ["printed", "in_transit", "delivered"]
    store.close()
