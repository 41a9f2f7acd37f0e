"""Helpers the integration tests share: DKIM checks with dkimpy, an SMTP server."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import dkim
from aiosmtpd.smtp import SMTP, Envelope, Session


def txt_record(zone_file: Path) -> bytes:
    """The TXT record value from a zone line written by mailsflux."""
    return "".join(re.findall(r'"([^"]*)"', zone_file.read_text())).encode("ascii")


def dkim_verify(message: bytes, record: bytes, *, selector: str, domain: str) -> bool:
    want = f"{selector}._domainkey.{domain}.".encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record if name == want or name + b"." == want else b""

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def parse(message: bytes) -> EmailMessage:
    return email.message_from_bytes(message, policy=email.policy.default)  # type: ignore[return-value]


class Received:
    def __init__(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.data = data


class RecordingHandler:
    """Keeps every message; ``reply`` may script the answer per recipient."""

    def __init__(self, reply: Callable[[str, int], str | None] | None = None) -> None:
        self.received: list[Received] = []
        self.attempts: dict[str, int] = {}
        self.reply = reply
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            n = self.attempts[address] = self.attempts.get(address, 0) + 1
        answer = self.reply(address, n) if self.reply else None
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from or "",
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                )
            )
        return "250 2.0.0 queued"


class TimedHandler(RecordingHandler):
    """Also notes when each message arrived (monotonic clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.times.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


class SMTPServer:
    """A real aiosmtpd server on port 0 (a free loopback port), in its own thread.

    aiosmtpd's Controller cannot bind port 0, so the loop is run here.
    """

    def __init__(self, handler: RecordingHandler) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None

    def __enter__(self) -> SMTPServer:
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            return await self.loop.create_server(
                lambda: SMTP(self.handler, hostname="test-mx", enable_SMTPUTF8=True),
                host="127.0.0.1",
                port=0,
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"smtp+plain://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self.server is not None:
                self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
