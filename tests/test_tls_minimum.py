"""TLS 1.2 minimum, 1.3 preferred, in every context the project makes
(mailsflux/_tls.py): outbound SMTP, the webhooks client, the submission listener.

The peers that offer only TLS 1.0/1.1 need ``@SECLEVEL=0`` as well as the
version range: this machine's OpenSSL 3 still implements TLS 1.1 but refuses
its SHA-1 signatures at the default security level. Each such peer is first
shown to complete a TLS 1.1 handshake with an equally permissive partner, so a
refusal below is the project's context refusing, not a peer that cannot talk.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux._tls import client_context
from mailsflux.delivery.smtp import SMTPSession
from mailsflux.errors import TemporaryDeliveryError
from mailsflux.tracking import write_new_config
from mailsflux.types import RenderedMessage
from mailsflux.webhooks.client import Client, PostError
from tests._mail import RecordingHandler, SMTPServer
from tests._submission import submission
from tests._tls import TLSServer, self_signed, server_context

MSG = RenderedMessage(
    mail_from="s@sender.example",
    rcpt_to="r@example.com",
    data=b"Subject: tls\r\n\r\nbody\r\n",
    message_id="1",
)


def legacy(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """``ctx`` limited to TLS 1.0 and 1.1 (and the security level they need)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/TLSv1_1 are deprecated names
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def legacy_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return legacy(ctx)


async def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> str:
    """The version a bare TLS connection between the two negotiates."""
    srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server)
    port = srv.sockets[0].getsockname()[1]
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="x")
        version = w.get_extra_info("ssl_object").version()
        w.close()
        return str(version)
    finally:
        srv.close()


@pytest.fixture
def legacy_mx(tmp_path: Path) -> Iterator[tuple[TLSServer, RecordingHandler]]:
    handler = RecordingHandler()
    ctx = legacy(self_signed(tmp_path))
    assert asyncio.run(handshake(ctx, legacy_client())) == "TLSv1.1"
    with TLSServer(handler, ctx) as server:
        yield server, handler


def open_session(port: int, tls: str, ctx: ssl.SSLContext | None = None) -> SMTPSession:
    async def go() -> SMTPSession:
        s = await SMTPSession.open(
            "mx.test",
            port,
            address="127.0.0.1",
            tls=tls,
            tls_context=ctx,
            timeout=5,  # type: ignore[arg-type]
        )
        await s.send([MSG])
        await s.quit()
        return s

    return asyncio.run(go())


def test_outbound_smtp_refuses_tls_1_1(
    legacy_mx: tuple[TLSServer, RecordingHandler], tmp_path: Path
) -> None:
    server, handler = legacy_mx
    trust = client_context(cafile=tmp_path / "cert.pem")
    with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
        open_session(server.port, "required", trust)
    assert handler.received == []
    # Opportunistic STARTTLS keeps its policy (RFC 7435): a failed handshake,
    # here the refused TLS 1.1, is followed by plain text, never by TLS 1.1.
    session = open_session(server.port, "opportunistic")
    assert not session.tls and session.tls_version is None
    assert len(handler.received) == 1


def test_outbound_smtp_negotiates_tls_1_3(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with TLSServer(handler, self_signed(tmp_path)) as server:
        trust = client_context(cafile=tmp_path / "cert.pem")
        assert open_session(server.port, "required", trust).tls_version == "TLSv1.3"
        assert open_session(server.port, "opportunistic").tls_version == "TLSv1.3"
    assert len(handler.received) == 2


def test_webhooks_client_refuses_tls_1_1_and_negotiates_tls_1_3(tmp_path: Path) -> None:
    modern = server_context(tmp_path, ["localhost"], ca_file=tmp_path / "ca.pem")
    old = legacy(
        server_context(tmp_path, ["localhost"], ca_file=tmp_path / "old-ca.pem", stem="old")
    )
    versions: list[str] = []

    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        versions.append(w.get_extra_info("ssl_object").version())
        await r.readuntil(b"\r\n\r\n")
        await r.readexactly(2)
        w.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await w.drain()
        w.close()

    async def post(ctx: ssl.SSLContext, ca: str) -> int:
        srv = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=ctx)
        port = srv.sockets[0].getsockname()[1]
        client = Client(f"https://localhost:{port}/hook", timeout=5, ca_file=str(tmp_path / ca))
        try:
            return await client.post(b"{}", [("Content-Type", "application/json")])
        finally:
            client.close()
            srv.close()

    assert asyncio.run(handshake(old, legacy_client())) == "TLSv1.1"
    with pytest.raises(PostError):
        asyncio.run(post(old, "old-ca.pem"))
    assert versions == []  # the handshake never completed
    assert asyncio.run(post(modern, "ca.pem")) == 204
    assert versions == ["TLSv1.3"]


def test_submission_listener_refuses_a_tls_1_1_client(tmp_path: Path) -> None:
    client = legacy_client()
    assert asyncio.run(handshake(legacy(server_context(tmp_path, ["x"])), client)) == "TLSv1.1"

    async def go() -> None:
        async with submission(tmp_path, mx.url) as s:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.open_connection(
                    "127.0.0.1", s.implicit_port, ssl=client, server_hostname="localhost"
                )
            _, w = await asyncio.open_connection(
                "localhost", s.implicit_port, ssl=s.tls(), server_hostname="localhost"
            )
            assert w.get_extra_info("ssl_object").version() == "TLSv1.3"
            w.close()

    with SMTPServer(RecordingHandler()) as mx:
        asyncio.run(go())


def test_track_server_serves_https_with_tls_1_3_and_refuses_tls_1_1(tmp_path: Path) -> None:
    server_context(tmp_path, ["localhost"], ca_file=tmp_path / "ca.pem")
    cfg = tmp_path / "tracking.toml"
    write_new_config(cfg, "https://localhost")
    argv = [sys.executable, "-m", "mailsflux", "track-server", "--config", str(cfg)]
    argv += ["--port", "0", "--tls-cert", str(tmp_path / "server-cert.pem")]
    argv += ["--tls-key", str(tmp_path / "server-key.pem")]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.fullmatch(r"mailsflux track-server: listening on https://127\.0\.0\.1:(\d+)\n", line)
        assert m, (line, proc.poll())
        port = int(m.group(1))
        trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=trust)
        conn.request("GET", "/o/forged.gif")
        assert conn.getresponse().status == 404  # answered, over a verified certificate
        assert conn.sock is not None and conn.sock.version() == "TLSv1.3"  # type: ignore[attr-defined]
        conn.close()
        old = http.client.HTTPSConnection("localhost", port, timeout=10, context=legacy_client())
        with pytest.raises((ssl.SSLError, ConnectionError)):
            old.request("GET", "/o/forged.gif")
        old.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_track_server_names_a_bad_certificate_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "tracking.toml"
    write_new_config(cfg, "https://localhost")
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    argv = [sys.executable, "-m", "mailsflux", "track-server", "--config", str(cfg)]
    argv += ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "cert.pem")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert "cannot load the certificate and key" in out.stderr
    only_cert = argv[:-2]
    out = subprocess.run(only_cert, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "go together" in out.stderr
