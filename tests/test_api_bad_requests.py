"""Bad requests get a 4xx JSON error naming the field, with the request id; nothing is sent."""

from __future__ import annotations

from pathlib import Path

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

MESSAGE = {"sender": "a@acme.example", "to": "x@example.net", "subject": "s", "text": "t"}


def test_bad_bodies_are_refused_with_the_field_path(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        config = server_config(
            tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url), max_body=4096
        )
        key = new_key(config, "acme")
        with Running(config) as srv:

            def post(body: object = None, raw: bytes | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
                s, h, b = srv.call("POST", "/v1/messages", body, key=key, raw=raw)
                assert h["x-request-id"] and b["error"]["request_id"] == h["x-request-id"]
                return s, b["error"]

            s, e = post({**MESSAGE, "colour": "red"})
            assert s == 422 and "unknown field `colour`" in e["message"]
            s, e = post({**MESSAGE, "to": 7})
            assert s == 422 and e["field"] == "$.to"
            s, e = post({**MESSAGE, "attachments": [{"filename": "a", "content": "!!"}]})
            assert s == 422 and e["field"] == "$.attachments[0].content"
            s, e = post({k: v for k, v in MESSAGE.items() if k != "subject"})
            assert s == 422 and "subject" in e["message"]
            s, e = post(raw=b"{not json")
            assert s == 400 and e["code"] == "bad_json"
            s, e = post({**MESSAGE, "text": "x" * 5000})
            assert s == 413
            s, e = post({**MESSAGE, "to": "nobody"})
            assert s == 422
            s, e = post({**MESSAGE, "subject": "{{missing}}"})
            assert s == 422 and "missing" in e["message"]
            s, e = post({**MESSAGE, "headers": {"X-A": "b\r\nBcc: evil@example.org"}})
            assert s == 422
            s, _, _ = srv.call("GET", "/v1/nothing", key=key)
            assert s == 404
    assert handler.received == []
