"""The HTTP API serves HTTPS itself ([http] tls_cert/tls_key): TLS 1.3 with a
verified certificate, never below TLS 1.2; a bad key pair is one line at start."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path

import msgspec
import pytest

from mailsflux.errors import ConfigError
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config
from tests._tls import server_context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_the_api_over_https(tmp_path: Path) -> None:
    server_context(tmp_path, ["localhost", "127.0.0.1"], ca_file=tmp_path / "ca.pem")
    with SMTPServer(RecordingHandler()) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        assert config.http is not None
        config.http = msgspec.structs.replace(
            config.http, tls_cert=str(tmp_path / "server-cert.pem"),
            tls_key=str(tmp_path / "server-key.pem"),
        )  # fmt: skip
        key = new_key(config, "acme")
        with Running(config) as srv:
            ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            conn = http.client.HTTPSConnection("localhost", srv.port, context=ctx, timeout=20)
            msg = {"sender": "a@acme.example", "to": "x@example.net", "subject": "s", "text": "t"}
            conn.request("POST", "/v1/messages", body=json.dumps(msg), headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            r = conn.getresponse()
            assert r.status == 202, r.read()
            assert conn.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
            conn.close()
            old = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            with pytest.raises((ssl.SSLError, OSError)):
                c = http.client.HTTPSConnection("localhost", srv.port, context=old, timeout=10)
                c.request("GET", "/healthz")
                c.getresponse()

    config.http = msgspec.structs.replace(config.http, tls_key=str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigError, match="cannot load the certificate and key"):
        config.check()
