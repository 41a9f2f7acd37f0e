"""Type stub for the compiled SMTP client helpers (core/mailsflux/delivery/_smtpfast.pyx)."""

def payload(data: bytes, tail: bytes = b"") -> bytes:
    """``data`` dot-stuffed, CRLF-ended, with ``.\\r\\n``, then ``tail``."""

def parse(
    buf: bytes | bytearray | memoryview, lines: list[str]
) -> tuple[int, list[tuple[int, str]], bytes | None]:
    """``(consumed, [(code, text), ...], bad_line_or_None)`` for ``buf``."""
