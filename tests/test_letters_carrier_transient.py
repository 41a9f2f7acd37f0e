"""A carrier's passing failure keeps the letter pending, and the next run
hands it over again under the same letter id (the carrier's idempotency
key): a loopback carrier that answers 503, then 200, prints one letter,
not two. A 4xx refusal is final. A letter recorded but never handed over
(a crash between the two) is handed over on the next run with its key.
Error bodies of the carrier are not copied into problems or events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailsflux.events import Event
from mailsflux.letters import HTTPCarrier, load_letter_job, send_letters
from mailsflux.letters.run import open_store
from mailsflux.types import Problem
from tests._loopback import http_letter_job, reply_json, serving

KEY = "test-carrier-key"


class Carrier(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fail_next = 0  # POSTs still to answer 503
        self.keys: list[str] = []  # every POST's Idempotency-Key
        self.printed: dict[str, str] = {}  # key -> carrier id


class Handler(BaseHTTPRequestHandler):
    server: Carrier

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, doc: Any) -> None:
        reply_json(self, code, doc)

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        s = self.server
        key = self.headers["Idempotency-Key"]
        s.keys.append(key)
        if doc["to"]["postal_code"] == "10117":
            # Echoes the address, as some carriers do: never copied anywhere.
            return self._reply(
                422, {"error": {"code": "address_invalid", "message": f"bad: {doc['to']}"}}
            )
        if s.fail_next:
            s.fail_next -= 1
            return self._reply(503, {"error": f"busy with {doc['to']['name']}"})
        cid = s.printed.setdefault(key, f"car_{len(s.printed) + 1}")
        self._reply(200, {"id": cid, "tracking_events": [{"type": "submitted", "time": 1.0}]})


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    with serving(Carrier()) as server:
        yield server


def _job(tmp_path: Path, url: str, rows: str) -> Path:
    return http_letter_job(
        tmp_path,
        url,
        "<html><body><p>Dear {{name}}</p></body></html>",
        "id,name,street,city,postal_code,country\n" + rows,
    )


def test_503_then_200_prints_one_letter(
    tmp_path: Path, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{carrier.server_address[1]}"
    monkeypatch.setenv("LETTERS_TEST_KEY", KEY)
    job = load_letter_job(
        _job(
            tmp_path,
            url,
            "a1,Erika Mustermann,Hauptstraße 5,Berlin,10115,DE\n"
            "a2,Max Muster,Unter den Linden 1,Berlin,10117,DE\n",
        )
    )
    adapter = HTTPCarrier(url, KEY, attempts=1, sleep=lambda s: None)
    carrier.fail_next = 1
    problems: list[Problem] = []
    events: list[Event] = []
    first = send_letters(
        job, on_problem=problems.append, on_event=events.append, carrier=adapter, workers=1
    )
    assert (first.submitted, first.pending, first.failed) == (0, 1, 1)
    assert [e.type for e in events] == ["failed"]
    assert events[0].details.code == 422
    assert events[0].details.reply == "POST /v1/letters: HTTP 422 (address_invalid)"
    text = "\n".join(str(p) for p in problems) + events[0].details.reply
    for private in ("Erika", "Mustermann", "Max", "Linden", "busy"):
        assert private not in text, private
    assert "kept pending" in str(problems[0])

    second = send_letters(
        job, on_problem=problems.append, on_event=events.append, carrier=adapter, workers=1
    )
    assert (second.submitted, second.pending, second.failed, second.resumed) == (1, 0, 0, 1)
    # a1 twice under one key, a2 once: one letter printed.
    assert len(carrier.printed) == 1
    assert carrier.keys.count(carrier.keys[0]) == 2 and len(set(carrier.keys)) == 2
    third = send_letters(job, on_problem=problems.append, carrier=adapter, workers=1)
    assert (third.submitted, third.resumed) == (0, 2)
    assert len(carrier.keys) == 3


def test_a_letter_recorded_but_not_handed_over_goes_with_its_key(
    tmp_path: Path, carrier: Carrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{carrier.server_address[1]}"
    monkeypatch.setenv("LETTERS_TEST_KEY", KEY)
    row = "a1,Erika Mustermann,Hauptstraße 5,Berlin,10115,DE\n"
    job = load_letter_job(_job(tmp_path, url, row))
    from mailsflux.letters import PostalAddress

    store = open_store(job)
    try:  # what a crash right after recording leaves behind
        store.add("ltr_crashed", job.name, "a1", PostalAddress(country_code="DE"), "http")
    finally:
        store.close()
    adapter = HTTPCarrier(url, KEY, attempts=1, sleep=lambda s: None)
    s = send_letters(job, on_problem=lambda p: None, carrier=adapter, workers=1)
    assert (s.submitted, s.resumed) == (1, 0)
    assert carrier.keys == ["ltr_crashed"]
