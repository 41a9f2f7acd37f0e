"""Type stub for the compiled SMTP client helpers (core/mailsflux/delivery/_smtpfast.pyx)."""

import asyncio
from typing import Any

def payload(data: bytes, tail: bytes = b"") -> bytes:
    """``data`` dot-stuffed, CRLF-ended, with ``.\\r\\n``, then ``tail``."""

def parse(
    buf: bytes | bytearray | memoryview, lines: list[str]
) -> tuple[int, list[tuple[int, str]], bytes | None]:
    """``(consumed, [(code, text), ...], bad_line_or_None)`` for ``buf``."""

def ascii_address(addr: str) -> bool:
    """True when ``addr`` is ASCII and an envelope address (False for any non-ASCII)."""

def envelope(mail_from: str, rcpt_to: str, size: int) -> bytes | None:
    """The pipelined MAIL/RCPT/DATA commands, or None (non-ASCII or invalid address)."""

def receive(buf: bytearray, lines: list[str], q: Any, data: bytes) -> tuple[bool, str | None]:
    """Replies of ``data`` appended to ``q``; (a reply came, why to fail or None)."""

def enhanced_prefix(text: str) -> str | None:
    """``text[:5]`` when it starts with an enhanced status like ``2.0.0`` and a space."""

class ReaderState:
    """The reply reader's fields the compiled pipeline sets and reads each message."""

    _deadline: float
    _timeout: float
    _timer_at: float
    last: tuple[int, str] | None
    _lost: Exception | None
    _waiter: asyncio.Future[None] | None

class Pipeline:
    """The pipelined exchange of a batch's messages while every reply is 2xx (354 for DATA)."""

    sent: int
    stop_at: int
    pending: bool
    def __init__(
        self,
        reader: ReaderState,
        msgs: list[Any],
        out: list[Any],
        outcome: type,
        size_limit: int,
        timeout: float,
        data_timeout: float,
    ) -> None: ...
    def start(self) -> bool:
        """Write the first envelope; False when the first message is not for this path."""
    def feed(self, data: bytes) -> str | None:
        """Replies queued, the exchange moved on; why the connection must fail, or None."""
