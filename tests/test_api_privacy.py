"""A person's rights over the HTTP API: the admin role, one tenant's stores
only, every request audited without the address."""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgspec

from mailsflux.jobs.jobfile import TrackingSpec
from mailsflux.tracking.config import load_config
from tests._bounces import write_tracking_config
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config


def test_export_erase_object_scoped_to_the_tenant(tmp_path: Path) -> None:
    cfg = write_tracking_config(tmp_path / "acme-tracking.toml")
    acme, globex = two_tenants(tmp_path)
    acme = msgspec.structs.replace(acme, tracking=TrackingSpec(config=str(cfg), opens=False,
                                                               clicks=False))  # fmt: skip
    with SMTPServer(RecordingHandler()) as smtp:
        config = server_config(tmp_path / "data", [acme, globex], delivery(smtp.url))
        admin = new_key(config, "acme", "admin")
        sender = new_key(config, "acme", "send", "read")
        other = new_key(config, "globex", "send", "read")
        with Running(config) as srv:
            for key, frm in ((sender, "a@acme.example"), (other, "g@globex.example")):
                for to in ("Ann <ANN@example.net>", "bo@example.net"):
                    msg = {"sender": frm, "to": to, "subject": "s", "text": "t"}
                    assert srv.call("POST", "/v1/messages", msg, key=key)[0] == 202
            time.sleep(1.0)  # delivered meanwhile

            def ask(action: str, key: str, **body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
                s, _, b = srv.call("POST", f"/v1/privacy/{action}",
                                   {"address": "ann@example.net", **body}, key=key)  # fmt: skip
                return s, b

            assert ask("export", sender)[0] == 403  # not the admin role
            s, doc = ask("export", admin)
            assert s == 200, doc
            assert doc["tenant"] == "acme" and doc["address"] == "ann@example.net"
            assert sorted(e["type"] for e in doc["events"]) == ["delivered", "queued"]
            assert "bo@example.net" not in json.dumps(doc)
            assert "g@globex.example" not in json.dumps(doc)  # nothing of the other tenant
            assert "tracking" in doc

            s, done = ask("erase", admin)
            assert s == 200 and done["counts"]["events"] == 2
            assert ask("export", admin)[1]["events"] == []
            # The other tenant's data about the same person is its own, untouched.
            s, _, page = srv.call("GET", "/v1/events", key=other)
            assert sum(e["recipient"].lower() == "ann@example.net" for e in page["events"]) == 2

            assert ask("object", admin)[0] == 200
            assert ask("correct", admin)[0] == 422  # needs "to"
            assert ask("nonsense", admin)[0] == 404
    with load_config(cfg).open_store() as store:
        assert store.objects_to_tracking("ann@example.net")
    audit = (tmp_path / "data" / "tenants" / "acme" / "privacy-audit.jsonl").read_text()
    lines = [json.loads(x) for x in audit.splitlines()]
    assert [x["action"] for x in lines] == ["export", "erase", "export", "object"]
    assert all(x["by"].startswith("api_") for x in lines) and "ann" not in audit.lower()
