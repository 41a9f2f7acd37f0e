"""The inbound SMTP listener for the bounce domain (aiosmtpd).

It accepts mail only for genuine VERP addresses (:class:`Verp`) and the
configured feedback addresses (where complaint loops send ARF reports), and
refuses every other recipient at RCPT with ``550 5.1.1``, so it can never be
used as a relay: nothing it accepts is sent on, every message goes to the
ingest path (:class:`Ingestor`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsflux import masking
from mailsflux.compose import normalize_address
from mailsflux.feedback.ingest import Ingestor
from mailsflux.feedback.verp import Verp

log = masking.logger("mailsflux.feedback")  # addresses masked in every record

#: Largest report accepted (bytes): a DSN with the original attached.
DATA_SIZE_LIMIT = 10 * 1024 * 1024


class _Handler:
    def __init__(self, listener: BounceListener) -> None:
        self.listener = listener

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.listener.accepts(address):
            self.listener.refused += 1
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        if not isinstance(data, bytes):
            data = str(data or "").encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            report = self.listener.ingestor.ingest(
                data, source=f"smtp:{peer}", envelope_to=list(envelope.rcpt_tos)
            )
        except Exception:
            # Not recorded (a full disk, the store locked): let the sender retry.
            log.exception("could not record a report from %s", peer)
            return "451 4.3.0 cannot record the report now, try again later"
        self.listener.received += 1
        return f"250 2.0.0 OK {report.kind}"


class BounceListener:
    """``await start(host, port)``; ``await close()``. One per bounce domain."""

    def __init__(
        self,
        ingestor: Ingestor,
        verp: Verp | None,
        feedback_addresses: Iterable[str] = (),
        *,
        hostname: str | None = None,
        data_size_limit: int = DATA_SIZE_LIMIT,
    ) -> None:
        self.ingestor = ingestor
        self.verp = verp
        self.feedback = {normalize_address(a) for a in feedback_addresses}
        self.hostname = hostname
        self.data_size_limit = data_size_limit
        self.received = 0
        self.refused = 0
        self._server: asyncio.Server | None = None

    def accepts(self, address: str) -> bool:
        if self.verp is not None and self.verp.open(address) is not None:
            return True
        try:
            return normalize_address(address) in self.feedback
        except Exception:
            return False

    def _protocol(self) -> SMTP:
        kw: dict[str, Any] = {}
        if self.hostname:
            kw["hostname"] = self.hostname
        return SMTP(
            _Handler(self),
            data_size_limit=self.data_size_limit,
            enable_SMTPUTF8=True,
            decode_data=False,
            **kw,
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; return the address bound (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, port)
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


__all__ = ["DATA_SIZE_LIMIT", "BounceListener"]
