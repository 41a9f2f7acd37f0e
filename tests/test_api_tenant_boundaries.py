"""Every way across tenants is closed: another tenant's ids, cursors and domains give 404 or 403."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from mailsflux.server import key_store
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

MESSAGE = {"sender": "a@acme.example", "to": "x@example.net", "subject": "s", "text": "t"}


def test_no_tenant_reads_or_sends_as_another(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        acme = new_key(config, "acme", "send", "read")
        globex = new_key(config, "globex", "send", "read")
        reader = new_key(config, "acme", "read")
        with Running(config) as srv:
            s, _, b = srv.call("POST", "/v1/messages", MESSAGE, key=acme)
            assert s == 202
            mid = quote(b["id"])
            s, _, job = srv.call(
                "POST", "/v1/jobs",
                {"template": {"sender": "a@acme.example", "subject": "s", "text": "t"},
                 "recipients": ["y@example.net"]},
                key=acme,
            )  # fmt: skip
            assert s == 202
            jid = job["id"]
            time.sleep(0.2)
            s, _, page = srv.call("GET", "/v1/events", key=acme)
            assert s == 200 and page["events"]
            cursor = page["next"]

            # Another tenant: not found, never the data.
            for method, path in [
                ("GET", f"/v1/messages/{mid}"),
                ("GET", f"/v1/jobs/{jid}"),
                ("POST", f"/v1/jobs/{jid}/cancel"),
                ("GET", f"/v1/events?cursor={cursor}"),
            ]:
                s, _, b = srv.call(method, path, key=globex)
                assert s == 404, (method, path, b)
                assert "acme" not in str(b) and "x@example.net" not in str(b)
            s, _, b = srv.call("GET", "/v1/events", key=globex)
            assert s == 200 and b["events"] == []

            # Another tenant's domain, a subdomain trick, a role the key lacks.
            s, _, b = srv.call("POST", "/v1/messages", MESSAGE, key=globex)
            assert s == 403 and b["error"]["field"] == "sender"
            evil = {**MESSAGE, "sender": "a@acme.example.globex.example.evil.test"}
            s, _, b = srv.call("POST", "/v1/messages", evil, key=acme)
            assert s == 403
            s, _, b = srv.call("POST", "/v1/messages", MESSAGE, key=reader)
            assert s == 403
            # A sender that only renders to another tenant's domain is caught after rendering.
            sneaky = {**MESSAGE, "sender": "ceo@globex.example{{!<a@acme.example>}}"}
            s, _, b = srv.call("POST", "/v1/messages", sneaky, key=acme)
            assert s == 403 and b["error"]["field"] == "sender", b
            s, _, b = srv.call("GET", f"/v1/messages/{mid}", key=reader)
            assert s == 200

            # No key, a wrong secret, a revoked key.
            assert srv.call("GET", "/v1/events")[0] == 401
            wrong = acme[:-4] + ("aaaa" if not acme.endswith("aaaa") else "bbbb")
            assert srv.call("GET", "/v1/events", key=wrong)[0] == 401
            with key_store(config) as keys:
                assert keys.revoke(globex.split(".")[1])
            assert srv.call("GET", "/v1/events", key=globex)[0] == 401
