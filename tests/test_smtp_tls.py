"""STARTTLS: opportunistic by default with plain-text fallback; required checks certificates."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsflux.delivery.smtp import SMTPSession
from mailsflux.errors import TemporaryDeliveryError
from mailsflux.types import RenderedMessage
from tests._mail import RecordingHandler, SMTPServer
from tests._scripted_smtp import ScriptedSMTP
from tests._tls import TLSServer, self_signed

MSG = RenderedMessage(
    mail_from="s@sender.example",
    rcpt_to="r@example.com",
    data=b"Subject: tls\r\n\r\nsecret-ish\r\n",
    message_id="1",
)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[TLSServer, RecordingHandler]]:
    handler = RecordingHandler()
    with TLSServer(handler, self_signed(tmp_path)) as server:
        yield server, handler


def send(port: int, tls: str) -> SMTPSession:
    async def go() -> SMTPSession:
        s = await SMTPSession.open("127.0.0.1", port, tls=tls, timeout=5)  # type: ignore[arg-type]
        out = await s.send([MSG])
        assert out[0].status == "delivered"
        await s.quit()
        return s

    return asyncio.run(go())


def test_opportunistic_upgrades_even_with_an_unverifiable_certificate(
    tls_server: tuple[TLSServer, RecordingHandler],
) -> None:
    server, handler = tls_server
    session = send(server.port, "opportunistic")
    assert session.tls
    assert handler.received[0].data.endswith(b"secret-ish\r\n")


def test_required_checks_the_certificate(tls_server: tuple[TLSServer, RecordingHandler]) -> None:
    server, handler = tls_server
    with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
        send(server.port, "required")
    assert handler.received == []


def test_required_refuses_a_server_without_starttls() -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server, pytest.raises(TemporaryDeliveryError):
        send(server.port, "required")
    assert handler.received == []


def test_opportunistic_falls_back_to_plain_text_when_the_handshake_fails() -> None:
    with ScriptedSMTP(broken_starttls=True) as server:
        session = send(server.port, "opportunistic")
    assert not session.tls
    assert server.sessions == 2  # the failed TLS attempt, then plain text
    assert "STARTTLS" in server.lines
    assert len(server.bodies) == 1


def test_required_verifies_the_mx_name_while_connecting_to_its_address(
    tls_server: tuple[TLSServer, RecordingHandler], tmp_path: Path
) -> None:
    server, handler = tls_server
    trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    async def go(name: str) -> SMTPSession:
        s = await SMTPSession.open(
            name, server.port, address="127.0.0.1", tls="required", tls_context=trust, timeout=5
        )
        out = await s.send([MSG])
        assert out[0].status == "delivered"
        await s.quit()
        return s

    assert asyncio.run(go("mx.test")).tls  # the certificate's name: accepted
    with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
        asyncio.run(go("other.test"))  # same address, another name: refused
    assert len(handler.received) == 1
