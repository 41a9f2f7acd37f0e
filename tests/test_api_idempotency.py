"""Idempotency-Key: a retried POST gets the first answer and nothing is sent twice."""

from __future__ import annotations

import time
from pathlib import Path

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

MESSAGE = {"sender": "a@acme.example", "to": "x@example.net", "subject": "s", "text": "t"}


def test_a_retried_post_is_answered_once_and_sent_once(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        acme = new_key(config, "acme")
        globex = new_key(config, "globex")
        with Running(config) as srv:
            first = srv.call("POST", "/v1/messages", MESSAGE, key=acme,
                             headers={"Idempotency-Key": "order-1"})  # fmt: skip
            again = srv.call("POST", "/v1/messages", MESSAGE, key=acme,
                             headers={"Idempotency-Key": "order-1"})  # fmt: skip
            assert first[0] == again[0] == 202
            assert first[2] == again[2]
            assert again[1].get("idempotent-replayed") == "true"
            # The same key with another body is an error, not a send.
            other = {**MESSAGE, "to": "y@example.net"}
            s, _, b = srv.call("POST", "/v1/messages", other, key=acme,
                               headers={"Idempotency-Key": "order-1"})  # fmt: skip
            assert s == 422 and b["error"]["code"] == "idempotency_key_reused"
            # Keys are per tenant: another tenant's same key is its own.
            s, _, b = srv.call("POST", "/v1/messages", {**MESSAGE, "sender": "g@globex.example"},
                               key=globex, headers={"Idempotency-Key": "order-1"})  # fmt: skip
            assert s == 202 and b["id"] != first[2]["id"]
            # A refused request does not use its key up.
            bad = {**MESSAGE, "to": "not-an-address"}
            s, _, _ = srv.call("POST", "/v1/messages", bad, key=acme,
                               headers={"Idempotency-Key": "order-2"})  # fmt: skip
            assert s == 422
            s, _, _ = srv.call("POST", "/v1/messages", MESSAGE, key=acme,
                               headers={"Idempotency-Key": "order-2"})  # fmt: skip
            assert s == 202
            deadline = time.monotonic() + 20
            while len(handler.received) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
    sent = sorted((r.mail_from, tuple(r.rcpt_tos)) for r in handler.received)
    assert sent == [
        ("a@acme.example", ("x@example.net",)),
        ("a@acme.example", ("x@example.net",)),
        ("g@globex.example", ("x@example.net",)),
    ]
