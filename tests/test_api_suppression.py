"""A tenant's suppression list (its tracking store) is honoured on API sends,
and a hard bounce of an API send joins it: the next message is not sent."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from mailsflux.jobs.jobfile import TrackingSpec
from tests._bounces import write_tracking_config
from tests._cli import run_cli
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config

MESSAGE = {"sender": "a@acme.example", "subject": "s", "text": "t"}


def test_api_sends_honour_the_tenants_suppression_list(tmp_path: Path) -> None:
    cfg = write_tracking_config(tmp_path / "acme-tracking.toml")
    acme, globex = two_tenants(tmp_path)
    acme = msgspec.structs.replace(
        acme, tracking=TrackingSpec(config=str(cfg), opens=False, clicks=False)
    )
    assert run_cli("suppression", "add", "blocked@example.net", "--reason", "manual",
                   "--tracking", str(cfg)).returncode == 0  # fmt: skip
    handler = RecordingHandler(lambda a, n: "550 5.1.1 gone" if a.startswith("gone@") else None)
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", [acme, globex], delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:

            def state(to: str) -> str:
                s, _, b = srv.call("POST", "/v1/messages", {**MESSAGE, "to": to}, key=key)
                assert s == 202, b
                deadline = time.monotonic() + 20
                while True:
                    s, _, m = srv.call("GET", f"/v1/messages/{b['id']}", key=key)
                    if m["state"] != "queued" or time.monotonic() > deadline:
                        return str(m["state"])
                    time.sleep(0.05)

            assert state("blocked@example.net") == "suppressed"
            assert state("gone@example.net") == "bounced"
            assert state("gone@example.net") == "suppressed"  # the hard bounce joined the list
            assert state("ok@example.net") == "delivered"
    sent = sorted(r for m in handler.received for r in m.rcpt_tos)
    assert sent == ["ok@example.net"]
    check = run_cli("suppression", "check", "gone@example.net", "--tracking", str(cfg))
    assert check.returncode == 1 and "hard-bounce" in check.stdout
