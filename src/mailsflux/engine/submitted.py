"""A message that arrives finished (SMTP submission), made ready to sign.

RFC 6409 section 8 lets a submission agent complete a message: it adds the
Message-ID and Date a client left out, and Bcc never leaves it (RFC 5322
section 3.6.3: the blind copies must not see each other). Only the header
block is touched; the body goes on byte for byte, so a client's own
signatures over it stay valid.
"""

from __future__ import annotations

import email.utils
import re
import secrets

import msgspec

from mailsflux.errors import HeaderError

#: A header field's first line: its name, and the line ending.
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")


class Submitted(msgspec.Struct, frozen=True):
    """The message to sign, its Message-ID (no brackets), its From address
    (the first) and every address its From names."""

    data: bytes
    message_id: str
    sender: str
    senders: tuple[str, ...] = ()


def new_message_id(domain: str) -> str:
    """A fresh Message-ID (no brackets): 20 random hex digits at ``domain``."""
    return f"{secrets.token_hex(10)}.0@{domain}"


def prepare_submitted(data: bytes, id_domain: str) -> Submitted:
    """``data`` with Bcc removed and Message-ID and Date added when missing.
    Raises HeaderError (naming the header) for a message without a From or
    without a header block."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if not data.endswith(b"\r\n") or not _FIELD.match(data):
            raise HeaderError("the message has no header block", field="header")
        head, body = data, b""
    else:
        head, body = data[: end + 2], data[end + 2 :]
    kept: list[bytes] = []
    names: set[bytes] = set()
    skipping = False
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not kept and not skipping:
                raise HeaderError(
                    "the header block starts with a continuation line", field="header"
                )
            if not skipping:
                kept.append(line)
            continue
        m = _FIELD.match(line)
        if m is None:
            raise HeaderError(f"not a header field: {line[:40]!r}", field="header")
        name = m.group(1).lower()
        skipping = name == b"bcc"
        if not skipping:
            names.add(name)
            kept.append(line)
    if b"from" not in names:
        raise HeaderError("the message has no From header", field="From")
    senders = _addresses(kept, b"from")
    sender = senders[0] if senders else ""
    message_id = _address(kept, b"message-id")
    added: list[bytes] = []
    if not message_id:
        message_id = new_message_id(id_domain)
        added.append(b"Message-ID: <" + message_id.encode() + b">")
    if b"date" not in names:
        added.append(b"Date: " + email.utils.formatdate(localtime=False).encode())
    out = b"\r\n".join(kept + added) + b"\r\n" + body
    return Submitted(data=out, message_id=message_id, sender=sender, senders=tuple(senders))


def header_address(data: bytes, name: bytes) -> str:
    """The first address in header ``name`` (lower case, e.g. ``b"from"``) of a
    finished message."""
    found = header_addresses(data, name)
    return found[0] if found else ""


def header_addresses(data: bytes, name: bytes) -> list[str]:
    """Every address in header ``name`` of a finished message, parsed as RFC
    5322 says (a ``<...>`` inside a quoted display name is not an address)."""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)]
    return _addresses(head.split(b"\r\n"), name)


def _addresses(lines: list[bytes], name: bytes) -> list[str]:
    value: list[bytes] = []
    for line in lines:
        if value and line[:1] in (b" ", b"\t"):
            value.append(line)
            continue
        if value:
            break
        m = _FIELD.match(line)
        if m is not None and m.group(1).lower() == name:
            value.append(line[m.end() :])
    raw = b" ".join(v.strip() for v in value).decode("utf-8", "replace")
    return [addr for _, addr in email.utils.getaddresses([raw]) if addr]


def _address(lines: list[bytes], name: bytes) -> str:
    found = _addresses(lines, name)
    return found[0] if found else ""
