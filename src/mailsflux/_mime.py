"""MIME assembly of a personalised message.

Bodies arrive as UTF-8 bytes. A body that is ASCII with short lines goes out
as 7bit; anything else as quoted-printable, which keeps every line under
76 octets (RFC 2045 6.7) so no receiver has to accept 8BITMIME.
"""

from __future__ import annotations

import binascii

# RFC 5322 2.1.1: at most 998 octets per line, CRLF excluded.
_MAX_LINE = 998


def crlf(data: bytes) -> bytes:
    """Normalise bare LF and bare CR to CRLF."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def body_part(data: bytes, subtype: str) -> bytes:
    """A leaf part: its MIME headers, a blank line and the encoded body."""
    body = crlf(data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    if body.isascii() and (
        len(body) <= _MAX_LINE or max(map(len, body.split(b"\r\n"))) <= _MAX_LINE
    ):
        cte = b"7bit"
    else:
        cte = b"quoted-printable"
        body = binascii.b2a_qp(body, quotetabs=False, istext=True, header=False)
    return (
        b"Content-Type: text/" + subtype.encode("ascii") + b"; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body
    )


def alternative(text: bytes | None, html: bytes | None, boundary: str) -> tuple[bytes, bytes]:
    """Return (Content-Type header line, body) for text and/or HTML.

    With both, a multipart/alternative (RFC 2046 5.1.4) holding text first,
    so the richest part comes last as receivers expect.
    """
    if html is None and text is None:
        raise ValueError("a message needs a text or an HTML body")
    if html is None or text is None:
        part = body_part(text if text is not None else html, "plain" if html is None else "html")  # type: ignore[arg-type]
        head, _, body = part.partition(b"\r\n\r\n")
        return head, body
    b = boundary.encode("ascii")
    body = b"".join(
        (
            b"--",
            b,
            b"\r\n",
            body_part(text, "plain"),
            b"--",
            b,
            b"\r\n",
            body_part(html, "html"),
            b"--",
            b,
            b"--\r\n",
        )
    )
    head = b'Content-Type: multipart/alternative; boundary="' + b + b'"'
    return head, body
