"""A stored template plus data: PUT /v1/templates/{id}, then messages and jobs name it."""

from __future__ import annotations

import time
from pathlib import Path

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

WELCOME = {
    "sender": "Acme <hello@acme.example>",
    "subject": "Welcome, {{first}}",
    "text": "Hello {{first}} from {{team}}",
    "data": {"team": "Acme"},
}


def test_messages_and_jobs_use_a_stored_template(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        acme = new_key(config, "acme")
        globex = new_key(config, "globex")
        with Running(config) as srv:
            s, _, b = srv.call("PUT", "/v1/templates/welcome", WELCOME, key=acme)
            assert s == 200 and b["template"]["subject"] == "Welcome, {{first}}"
            assert srv.call("GET", "/v1/templates/welcome", key=acme)[0] == 200
            # Another tenant has no such template.
            assert srv.call("GET", "/v1/templates/welcome", key=globex)[0] == 404
            s, _, b = srv.call("POST", "/v1/messages", {"template_id": "welcome", "to": "x@e.test",
                               "data": {"first": "Ann"}}, key=globex)  # fmt: skip
            assert s == 404 and b["error"]["field"] == "template_id"

            ann = {"template_id": "welcome", "to": "ann@example.net", "data": {"first": "Ann"}}
            s, _, b = srv.call("POST", "/v1/messages", ann, key=acme)
            assert s == 202, b
            s, _, b = srv.call("POST", "/v1/messages", {"template_id": "welcome",
                               "to": "bo@example.net", "subject": "Hi {{first}}",
                               "data": {"first": "Bo", "team": "Sales"}}, key=acme)  # fmt: skip
            assert s == 202, b
            s, _, b = srv.call("POST", "/v1/jobs", {"template_id": "welcome", "recipients": [
                {"email": "cy@example.net", "first": "Cy"}]}, key=acme)  # fmt: skip
            assert s == 202, b
            # Neither a template nor sender and subject: refused, naming what is missing.
            s, _, b = srv.call("POST", "/v1/messages", {"to": "d@example.net", "text": "x"},
                               key=acme)  # fmt: skip
            assert s == 422 and "sender" in b["error"]["message"]
            s, _, b = srv.call("PUT", "/v1/templates/bad%21id", WELCOME, key=acme)
            assert s == 422 and b["error"]["field"] == "id"
            deadline = time.monotonic() + 30
            while len(handler.received) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
    got = {r.rcpt_tos[0]: r.data for r in handler.received}
    assert b"Subject: Welcome, Ann" in got["ann@example.net"]
    assert b"Hello Ann from Acme" in got["ann@example.net"]
    assert b"Subject: Hi Bo" in got["bo@example.net"]
    assert b"Hello Bo from Sales" in got["bo@example.net"]
    assert b"Subject: Welcome, Cy" in got["cy@example.net"]
