"""Header encoding: injection checks, RFC 2047 encoded words and folding.

Every header value goes through :func:`check_value` first: a CR or LF in a
value would let recipient data forge headers, so it is refused outright
instead of being stripped.
"""

from __future__ import annotations

import base64

from mailsflux._addresses import Address, parse_address
from mailsflux._errors import AddressError, HeaderError, HeaderInjectionError

# RFC 5322 2.1.1: lines SHOULD be at most 78 characters.
_FOLD_AT = 78
# RFC 2047 2: an encoded word is at most 75 characters.
_MAX_WORD = 75
_PREFIX = "=?utf-8?b?"
# RFC 5322 3.2.3 specials that force a display name into quotes.
_SPECIALS = frozenset('()<>[]:;@\\,."')


def check_value(name: str, value: str) -> None:
    """Refuse a header value holding CR or LF (or NUL), naming the header."""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjectionError(
            f"header {name} holds a CR, LF or NUL character; refused", field=name
        )


def check_name(name: str) -> None:
    # RFC 5322 2.2: printable US-ASCII except colon.
    if not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
        raise HeaderError(f"invalid header name {name!r}", field=name)


def encoded_words(text: str, first_room: int) -> list[str]:
    """RFC 2047 base64 encoded words, split between characters, never inside one.

    ``first_room`` is how many columns the first word may take.
    """
    words: list[str] = []
    room = max(first_room, len(_PREFIX) + 2 + 8)
    chunk: list[str] = []
    size = 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        # base64 length of size+n octets, plus prefix and "?="
        if chunk and len(_PREFIX) + 4 * ((size + n + 2) // 3) + 2 > room:
            words.append(_word("".join(chunk)))
            chunk, size, room = [], 0, _MAX_WORD
        chunk.append(ch)
        size += n
    if chunk:
        words.append(_word("".join(chunk)))
    return words


def _word(s: str) -> str:
    return _PREFIX + base64.b64encode(s.encode("utf-8")).decode("ascii") + "?="


def fold(name: str, value: str) -> str:
    """Fold an ASCII value at spaces so lines stay near 78 columns."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    out: list[str] = []
    cur = f"{name}:"
    for tok in value.split(" "):
        if len(cur) + 1 + len(tok) > _FOLD_AT and cur.strip() and not cur.endswith(":"):
            out.append(cur)
            cur = " " + tok
        else:
            cur = f"{cur} {tok}"
    out.append(cur)
    return "\r\n".join(out)


def encode_unstructured(name: str, value: str) -> str:
    """``Name: value`` for an unstructured header (Subject, custom headers)."""
    check_value(name, value)
    if value.isascii():
        return fold(name, value)
    words = encoded_words(value, _FOLD_AT - len(name) - 2)
    return f"{name}: " + "\r\n ".join(words)


def format_mailbox(name: str, display: str, address: str) -> tuple[str, Address]:
    """``Name: "Display" <addr>``, with the domain in IDNA form."""
    check_value(name, display)
    check_value(name, address)
    try:
        addr = parse_address(address)
    except AddressError as exc:
        raise HeaderError(f"header {name}: {exc.message}", field=name) from None
    if not display:
        return f"{name}: {addr}", addr
    if display.isascii():
        if any(c in _SPECIALS for c in display):
            display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return fold(name, f"{display} <{addr}>"), addr
    words = encoded_words(display, _FOLD_AT - len(name) - 2)
    return f"{name}: " + "\r\n ".join(words) + f"\r\n <{addr}>", addr
