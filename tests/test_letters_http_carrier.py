"""The HTTP carrier adapter against a real carrier API on loopback.

The server fails the first submission (500), rate-limits the second (429,
Retry-After), refuses one address for good (422), then accepts; it serves
tracking events, which become the letter's events. What it receives is
checked field by field: the address, the PDF and the service, nothing of
the recipient's email or merge data.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailsflux.events import Event
from mailsflux.letters import HTTPCarrier, load_letter_job, poll_letters, send_letters
from mailsflux.types import Problem
from tests._loopback import http_letter_job, reply_json

KEY = "test-carrier-key"


class Carrier(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = ["500", "429"]  # what the next POSTs get, then 201s
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.letters: dict[str, list[dict[str, Any]]] = {}
        self.by_key: dict[str, str] = {}


class Handler(BaseHTTPRequestHandler):
    server: Carrier

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, doc: Any = None, headers: dict[str, str] | None = None) -> None:
        reply_json(self, code, doc if doc is not None else {}, headers)

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Authorization"] != f"Bearer {KEY}":
            return self._reply(401, {"error": "unauthorized"})
        s = self.server
        if self._scripted():
            return None
        if doc["to"]["postal_code"] == "10117":
            return self._reply(422, {"error": "undeliverable address"})
        s.received.append((dict(self.headers), doc))
        key = self.headers["Idempotency-Key"]
        cid = s.by_key.setdefault(key, f"car_{len(s.by_key) + 1}")
        s.letters.setdefault(cid, [{"type": "submitted", "time": 100.0}])
        self._reply(201, {"id": cid, "tracking_events": s.letters[cid]})

    def _scripted(self) -> bool:
        """The next scripted failure, if any is left."""
        if not self.server.script:
            return False
        step = self.server.script.pop(0)
        self._reply(int(step), {"error": "busy"}, {"Retry-After": "1"})
        return True

    def do_GET(self) -> None:
        if self._scripted():
            return
        cid = self.path.rsplit("/", 1)[1]
        if cid not in self.server.letters:
            return self._reply(404, {"error": "no such letter"})
        self._reply(200, {"id": cid, "tracking_events": self.server.letters[cid]})


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    server = Carrier()
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def _job(tmp_path: Path, url: str) -> Path:
    return http_letter_job(
        tmp_path,
        url,
        "<html><body><p>Dear {{name}}, your {{plan}} plan renews.</p></body></html>",
        "id,email,name,street,city,postal_code,country,plan,secret_note\n"
        "a1,erika@example.com,Erika Mustermann,Hauptstraße 5,Berlin,10115,DE,Platinum,XYZZY-1\n"
        "a2,max@example.com,Max Muster,Unter den Linden 1,Berlin,10117,DE,Gold,XYZZY-2\n",
        "attempts = 3\n",
    )


def test_http_carrier_submissions_tracking_and_fields(
    tmp_path: Path, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{carrier.server_address[1]}"
    monkeypatch.setenv("LETTERS_TEST_KEY", KEY)
    job = load_letter_job(_job(tmp_path, url))
    sleeps: list[float] = []
    adapter = HTTPCarrier(url, job.api_key(), attempts=3, sleep=sleeps.append)
    events: list[Event] = []
    problems: list[Problem] = []
    summary = send_letters(
        job, on_problem=problems.append, on_event=events.append, carrier=adapter, workers=1
    )
    assert (summary.submitted, summary.failed) == (1, 1)
    # The 500 backed off, the 429 waited its Retry-After.
    assert len(sleeps) == 2 and sleeps[1] == 1.0
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'r.csv'}:3: letter a2: error: carrier: POST /v1/letters: HTTP 422"
    ]
    assert [(e.type, e.recipient) for e in events] == [("letter_submitted", "a1"), ("failed", "a2")]
    assert events[1].details.code == 422

    # Exactly what the carrier got: the address, the PDF, the service.
    ((headers, doc),) = carrier.received
    assert set(doc) == {"reference", "to", "file", "paper", "mail_class", "color"}
    assert doc["to"] == {
        "name": "Erika Mustermann", "company": "", "address_lines": ["Hauptstraße 5"],
        "city": "BERLIN", "city_area": "", "state": "", "postal_code": "10115",
        "sorting_code": "", "country": "DE",
    }  # fmt: skip
    assert (doc["paper"], doc["mail_class"], doc["color"]) == ("A4", "standard", False)
    assert base64.b64decode(doc["file"]).startswith(b"%PDF-")
    assert headers["Idempotency-Key"] == doc["reference"] == events[0].message_id
    without_pdf = json.dumps({**doc, "file": ""}) + json.dumps(headers)
    # The ref quoted: a bare "a1" may occur in the letter id's hex digits.
    for private in ("erika@example.com", "Platinum", "XYZZY", "plan", "email", '"a1"'):
        assert private not in without_pdf, private

    # Tracking: each new carrier event becomes one event, once.
    carrier.letters["car_1"] += [
        {"type": "printed", "time": 200.0},
        {"type": "in_transit", "time": 300.0, "tracking_number": "9400100000000000000000"},
    ]
    seen: list[Event] = []
    assert poll_letters(job, on_event=seen.append, carrier=adapter) == {
        "in_transit": 1,
        "failed": 1,
    }
    carrier.letters["car_1"].append({"type": "delivered", "time": 400.0})
    poll_letters(job, on_event=seen.append, carrier=adapter)
    poll_letters(job, on_event=seen.append, carrier=adapter)
    assert [(e.type, e.time, e.details.tracking_number) for e in seen] == [
        ("printed", 200.0, ""),
        ("in_transit", 300.0, "9400100000000000000000"),
        ("delivered", 400.0, ""),
    ]
    assert all(e.message_id == events[0].message_id and e.recipient == "a1" for e in seen)
    assert {e.details.carrier for e in seen} == {"http"}


def test_rate_limit_past_the_attempts_is_one_error(carrier: Carrier) -> None:
    from mailsflux.errors import CarrierError

    carrier.script = ["429", "429", "429"]
    url = f"http://127.0.0.1:{carrier.server_address[1]}"
    adapter = HTTPCarrier(url, KEY, attempts=2, sleep=lambda s: None)
    with pytest.raises(CarrierError, match="HTTP 429 after 2 attempts") as err:
        adapter.status("car_1")  # GETs are limited the same way
    assert err.value.temporary
