"""The two protocol steps where aiosmtpd spends most of its time, done
faster: reading DATA (aiosmtpd reads it line by line: ~70 awaits and a
debug log call per line of a 3 KB message), and parsing an ordinary
``<local@domain>`` path (aiosmtpd runs the email package's RFC 5322 header
parser on every MAIL and RCPT). Same results, same limits, same replies.
"""

from __future__ import annotations

import asyncio
import email.policy
import re

#: A DATA line ends with CRLF; one of more than 1000 octets before it is
#: refused (RFC 5321 4.5.3.1.6: 998, plus a stuffed dot, plus slack; as aiosmtpd).
_LONG_LINE = re.compile(rb"[^\n]{1002}")
_END = b".\r\n"
#: Where the header block ends (bare LF line ends too: the gateway takes them).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
#: The common path forms only; anything else goes to aiosmtpd's full parser.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*"
#: ``Name <a@b>`` or ``a@b`` with no quotes, comments, groups or lists: one
#: address, read without the header parser (about 60 us a message).
_SIMPLE_FROM = re.compile(rf"\s*(?:[^\"<>,;:()\\@\[\]]*<({_ADDR})>|({_ADDR}))\s*")
_AT_TOKEN = re.compile(r"[^\s<>(),;:\"\[\]]+@[^\s<>(),;:\"\[\]]+")
_SIMPLE_PATH = re.compile(rf"\s*<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>\s*(.*)", re.S)

TOO_BIG = "552 5.3.4 Message size exceeds the fixed maximum (see SIZE)"
TOO_LONG = "500 5.5.2 Line too long: at most 998 characters per line (RFC 5321 4.5.3.1.6)"


def authors(data: bytes) -> list[str] | None:
    """The addresses of the message's From header, or None unless there is
    exactly one From header naming at least one address.

    Beyond ``Name <a@b>`` and ``a@b``, every address the RFC 5322 parser
    finds and every ``x@y`` anywhere in the value (a display name, a
    comment) counts: readers and DMARC checks disagree on odd From fields,
    so each reading must be the tenant's."""
    m = _HEAD_END.search(data)
    head = data[: m.start()] if m else data
    values: list[str] = []
    current_is_from = False
    for line in head.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if values and current_is_from:
                values[-1] += line.decode("utf-8", "replace")
            continue
        current_is_from = line[:5].lower() == b"from:"
        if current_is_from:
            values.append(line[5:].decode("utf-8", "replace"))
    if len(values) != 1:
        return None
    simple = _SIMPLE_FROM.fullmatch(values[0])
    if simple:
        return [simple.group(1) or simple.group(2)]
    try:
        header = email.policy.default.header_factory("From", values[0].strip())
        found = [a.addr_spec for a in header.addresses if "@" in a.addr_spec]
    except (ValueError, IndexError, TypeError):
        return None
    if not found:
        return None
    return found + _AT_TOKEN.findall(values[0])


def simple_path(arg: str) -> tuple[str, str] | None:
    """``(address, rest)`` for ``<local@domain> PARAMS``, else None."""
    m = _SIMPLE_PATH.fullmatch(arg)
    return (m.group(1), m.group(2)) if m else None


async def read_data(reader: asyncio.StreamReader, max_size: int) -> bytes | str:
    """The message after ``354``, up to the lone dot, un-dot-stuffed; or
    the refusal (size, line length) once the client has sent it all."""
    # aiosmtpd's reader is limited to one line; a whole message must fit here.
    line_limit = reader._limit  # type: ignore[attr-defined]
    reader._limit = max_size + 8  # type: ignore[attr-defined]
    try:
        buf = bytearray()
        while True:
            try:
                buf += await reader.readuntil(_END)
            except asyncio.LimitOverrunError as exc:
                buf += await reader.read(exc.consumed)
                await _discard(reader, bytes(buf[-4:]))
                return TOO_BIG
            n = len(buf)
            # ".\r\n" ends the data only at a line's start: CRLF before it, or nothing
            if n == 3 or buf[n - 5 : n - 3] == b"\r\n":
                break
            if n > max_size:
                await _discard(reader, bytes(buf[-4:]))
                return TOO_BIG
    finally:
        reader._limit = line_limit  # type: ignore[attr-defined]
    del buf[-3:]
    if len(buf) > max_size:
        return TOO_BIG
    if _LONG_LINE.search(buf):
        return TOO_LONG
    # RFC 5321 4.5.2: a line's leading dot was added by the client; drop it.
    if buf[:1] == b".":
        del buf[:1]
    return bytes(buf).replace(b"\r\n.", b"\r\n")


async def _discard(reader: asyncio.StreamReader, tail: bytes) -> None:
    """Read and drop the rest of an oversized message, up to its end."""
    while True:
        try:
            chunk = await reader.readuntil(_END)
        except asyncio.LimitOverrunError as exc:
            tail = (tail + await reader.read(exc.consumed))[-4:]
            continue
        seen = tail + chunk
        if seen[-5:-3] == b"\r\n":
            return
        tail = seen[-4:]
