"""POST /v1/messages: 202 once stored, then delivered signed; its state and events readable."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record
from tests._serve import Running, new_key, server_config, wait_for


def test_a_message_is_accepted_then_delivered_and_its_events_are_read(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            status, headers, body = srv.call(
                "POST",
                "/v1/messages",
                {
                    "sender": "News <news@acme.example>",
                    "to": "Ann <ann@example.net>",
                    "subject": "Hello {{first}}",
                    "text": "Hi {{first}}",
                    "data": {"first": "Ann"},
                    "tags": ["welcome"],
                },
                key=key,
                headers={"X-Request-Id": "req-42"},
            )
            assert status == 202, body
            assert headers["x-request-id"] == "req-42"
            mid = body["id"]
            assert body["status"] == "queued"

            def delivered():  # type: ignore[no-untyped-def]
                s, _, b = srv.call("GET", f"/v1/messages/{quote(mid)}", key=key)
                return b if s == 200 and b["state"] == "delivered" else None

            msg = wait_for(delivered)
            assert [e["type"] for e in msg["events"]] == ["queued", "delivered"]
            assert msg["events"][1]["details"]["code"] == 250
            assert msg["events"][0]["tenant"] == "acme"
            assert msg["events"][0]["recipient"] == "ann@example.net"

            status, _, page = srv.call("GET", "/v1/events", key=key)
            assert status == 200
            assert [e["type"] for e in page["events"]] == ["queued", "delivered"]
            # The cursor goes on from where the last page ended.
            status, _, rest = srv.call("GET", f"/v1/events?cursor={page['next']}", key=key)
            assert status == 200 and rest["events"] == [] and rest["next"] == page["next"]
    assert len(handler.received) == 1
    got = handler.received[0]
    assert b"Subject: Hello Ann" in got.data
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    assert dkim_verify(got.data, record, selector="s1", domain="acme.example")
