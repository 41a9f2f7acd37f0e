"""An https:// endpoint whose certificate a private CA (``ca_file``) issued
gets the events; the same endpoint without that CA is never sent to."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config, wait_for
from tests._tls import server_context
from tests._webhooks import Receiver, delivered, hook, post_messages


def test_https_with_a_private_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server_context(tmp_path, ["127.0.0.1"], ca_file=tmp_path / "ca.pem")
    tls = (tmp_path / "server-cert.pem", tmp_path / "server-key.pem")
    with Receiver(tls=tls) as rx, SMTPServer(RecordingHandler()) as smtp:
        base = f"https://127.0.0.1:{rx.port}"
        acme, globex = two_tenants(tmp_path)
        acme = msgspec.structs.replace(
            acme,
            webhooks=[
                hook(f"{base}/trusted", ca_file=str(tmp_path / "ca.pem")),
                hook(f"{base}/untrusted"),
            ],
        )
        config = server_config(tmp_path / "data", [acme, globex], delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            post_messages(srv, key, "a@acme.example", 3)
            events = delivered(srv, key, 3)
            rx.wait_for_ids({int(e["id"][4:]) for e in events}, "/trusted")
            wait_for(lambda: "certificate" in capsys.readouterr().err.lower())
    assert rx.acked("/trusted")
    assert not [p for p in rx.posts if p.path == "/untrusted"]
