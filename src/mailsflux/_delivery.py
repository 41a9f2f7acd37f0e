"""Delivery to one relay: a pool of reused, pipelined SMTP sessions.

Each worker holds one :class:`SMTPSession` and sends whatever is queued in
batches, so with PIPELINING a busy session costs one round trip a message.
A session is renewed after ``messages_per_connection`` messages. Replies are
classified once: 2xx delivered, 5xx bounced, 4xx and broken sessions retried
in the job with backoff and jitter (without holding up the worker), then
left ``deferred``.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

from mailsflux._errors import TemporaryDeliveryError
from mailsflux._job import Relay
from mailsflux._smtp import Outcome, SessionError, SMTPSession, TLSMode, enhanced_status
from mailsflux._types import DeliveryResult, DeliveryStatus, Message

# Cap on one in-job backoff pause: a job never stalls for long on one message.
_MAX_BACKOFF = 5.0
# Messages one worker takes from the queue for one pipelined batch.
_BATCH = 32

_TLS: dict[str, TLSMode] = {"starttls": "opportunistic", "none": "none", "implicit": "implicit"}


async def open_session(relay: Relay, timeout: float) -> SMTPSession:
    return await SMTPSession.open(
        relay.host,
        relay.port,
        tls=_TLS[relay.tls],
        username=relay.username,
        password=relay.password,
        timeout=timeout,
        local_hostname=socket.getfqdn() or "localhost",
    )


async def probe(relay: Relay, timeout: float) -> None:
    """Connect and say EHLO once, so an unreachable relay fails the job at once."""
    try:
        session = await open_session(relay, timeout)
    except TemporaryDeliveryError as exc:
        raise TemporaryDeliveryError(
            f"cannot reach relay {relay.host}:{relay.port}: {exc}"
        ) from None
    await session.quit()


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
        self.queue: asyncio.Queue[tuple[Message, int] | None] = asyncio.Queue(
            maxsize=connections * _BATCH * 2
        )
        # Messages submitted and not yet finally classified (retries included).
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._retries: set[asyncio.Task[None]] = set()

    async def submit(self, msg: Message) -> None:
        self._open += 1
        self._idle.clear()
        await self.queue.put((msg, 1))

    async def run(self) -> None:
        """Run the workers until :meth:`close` lets them go."""
        await asyncio.gather(*(self._worker() for _ in range(self.connections)))

    async def close(self) -> None:
        """Wait until every submitted message has its final result, then stop."""
        await self._idle.wait()
        for _ in range(self.connections):
            await self.queue.put(None)

    def _take_batch(self, first: tuple[Message, int], room: int) -> list[tuple[Message, int]]:
        batch = [first]
        while len(batch) < min(_BATCH, room):
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if item is None:  # keep the stop signal for the next get
                self.queue.put_nowait(None)
                break
            batch.append(item)
        return batch

    async def _worker(self) -> None:
        session: SMTPSession | None = None
        try:
            while (first := await self.queue.get()) is not None:
                room = self.per_connection - (session.sent if session is not None else 0)
                if session is not None and (room <= 0 or not session.is_open):
                    await session.quit()
                    session, room = None, self.per_connection
                batch = self._take_batch(first, room)
                session = await self._send(session, batch)
        finally:
            if session is not None:
                await session.quit()

    async def _send(
        self, session: SMTPSession | None, batch: list[tuple[Message, int]]
    ) -> SMTPSession | None:
        outcomes: list[Outcome] = []
        try:
            if session is None:
                session = await open_session(self.relay, self.timeout)
            outcomes = await session.send([m for m, _ in batch])
        except SessionError as exc:
            outcomes = exc.completed
            session = None
            failure = Outcome("deferred", None, exc.message)
        except TemporaryDeliveryError as exc:
            session = None
            failure = Outcome("deferred", exc.code, exc.message)
        for i, (msg, attempt) in enumerate(batch):
            outcome = outcomes[i] if i < len(outcomes) else failure
            if outcome.status == "deferred" and attempt < self.attempts:
                self._retry(msg, attempt)
            else:
                self._result(msg, outcome, attempt)
        return session

    def _retry(self, msg: Message, attempt: int) -> None:
        pause = min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF) * (0.5 + random.random())

        async def later() -> None:
            await asyncio.sleep(pause)
            await self.queue.put((msg, attempt + 1))

        task = asyncio.ensure_future(later())
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    def _result(self, msg: Message, outcome: Outcome, attempts: int) -> None:
        status: DeliveryStatus = outcome.status
        self.on_result(
            DeliveryResult(
                recipient=msg.rcpt_to,
                message_id=msg.message_id,
                status=status,
                code=outcome.code,
                enhanced_status=enhanced_status(outcome.text),
                reply=outcome.text.strip()[:500],
                attempts=attempts,
                row=msg.row,
            )
        )
        self._open -= 1
        if self._open == 0:
            self._idle.set()
