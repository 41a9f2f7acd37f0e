"""SMTP delivery through aiosmtplib: a pool of reused connections.

Each worker holds one connection and sends up to ``messages_per_connection``
messages over it before opening a fresh one. Replies are classified once:
2xx delivered, 5xx bounced, 4xx / timeouts / dropped connections retried in
the job with backoff and jitter, then left ``deferred``.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
from collections.abc import Callable

import aiosmtplib

from mailsflux._errors import TemporaryDeliveryError
from mailsflux._job import Relay
from mailsflux._types import DeliveryResult, Message

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
# Cap on one in-job backoff pause: a job never stalls for long on one message.
_MAX_BACKOFF = 5.0


def enhanced_status(reply: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply, if any."""
    m = _ENHANCED.match(reply.strip())
    return m.group(1) if m else None


def _client(relay: Relay, timeout: float) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=relay.host,
        port=relay.port,
        username=relay.username,
        password=relay.password,
        use_tls=relay.tls == "implicit",
        start_tls=False if relay.tls == "none" else None,
        timeout=timeout,
        local_hostname=socket.getfqdn() or "localhost",
    )


async def probe(relay: Relay, timeout: float) -> None:
    """Connect and say EHLO once, so an unreachable relay fails the job at once."""
    client = _client(relay, timeout)
    try:
        await client.connect()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise TemporaryDeliveryError(
            f"cannot reach relay {relay.host}:{relay.port}: {exc}"
        ) from None


class Delivery:
    """Drains a queue of :class:`Message` over ``connections`` SMTP sessions."""

    def __init__(
        self,
        relay: Relay,
        on_result: Callable[[DeliveryResult], None],
        *,
        connections: int = 4,
        messages_per_connection: int = 1000,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.relay = relay
        self.on_result = on_result
        self.connections = connections
        self.per_connection = messages_per_connection
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=connections * 16)

    async def run(self) -> None:
        """Run the workers until each has taken one ``None`` from the queue."""
        await asyncio.gather(*(self._worker() for _ in range(self.connections)))

    async def close(self) -> None:
        for _ in range(self.connections):
            await self.queue.put(None)

    async def _worker(self) -> None:
        client: aiosmtplib.SMTP | None = None
        used = 0
        try:
            while True:
                msg = await self.queue.get()
                if msg is None:
                    return
                if client is not None and used >= self.per_connection:
                    await _quit(client)
                    client, used = None, 0
                client, used = await self._send(client, used, msg)
        finally:
            if client is not None:
                await _quit(client)

    async def _send(
        self, client: aiosmtplib.SMTP | None, used: int, msg: Message
    ) -> tuple[aiosmtplib.SMTP | None, int]:
        code: int | None = None
        reply = ""
        for attempt in range(1, self.attempts + 1):
            try:
                if client is None or not client.is_connected:
                    client = _client(self.relay, self.timeout)
                    await client.connect()
                    used = 0
                options = ["SMTPUTF8"] if msg.smtputf8 else []
                _, reply = await client.sendmail(
                    msg.mail_from, [msg.rcpt_to], msg.data, mail_options=options
                )
                used += 1
                self._result(msg, "delivered", 250, reply, attempt)
                return client, used
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0]
                code, reply = refused.code, refused.message
                await _reset(client)
            except aiosmtplib.SMTPResponseException as exc:
                code, reply = exc.code, exc.message
                await _reset(client)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                # Dropped connection, timeout, refused connect: a fresh session next time.
                code, reply = None, f"{type(exc).__name__}: {exc}"
                if client is not None:
                    client.close()
                client = None
            if code is not None and 500 <= code < 600:
                self._result(msg, "bounced", code, reply, attempt)
                return client, used
            if attempt < self.attempts:
                pause = min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF)
                await asyncio.sleep(pause * (0.5 + random.random()))
        self._result(msg, "deferred", code, reply, self.attempts)
        return client, used

    def _result(
        self, msg: Message, status: str, code: int | None, reply: str, attempts: int
    ) -> None:
        self.on_result(
            DeliveryResult(
                recipient=msg.rcpt_to,
                message_id=msg.message_id,
                status=status,  # type: ignore[arg-type]
                code=code,
                enhanced_status=enhanced_status(reply),
                reply=reply.strip()[:500],
                attempts=attempts,
                row=msg.row,
            )
        )


async def _reset(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        try:
            await client.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        if client.is_connected:
            await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        client.close()
