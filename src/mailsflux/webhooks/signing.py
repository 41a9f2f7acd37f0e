"""The ``Mailsflux-Signature`` header: HMAC-SHA256 over ``timestamp.body``.

:func:`verify` uses nothing but the standard library, so a receiver can
copy it as it is (the README shows it; a test runs the README's copy).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Mailsflux-Signature"
#: How old a signature a receiver accepts (seconds): older is a replay.
TOLERANCE = 300.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header's value for ``body`` sent at ``timestamp`` (now)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """Whether ``body`` (the raw request body, before any JSON parsing) was
    sent by Mailsflux with ``secret``: ``header`` is the request's
    ``Mailsflux-Signature`` (``t=TIMESTAMP,v1=HEX``). A signature more than
    ``tolerance`` seconds from now is refused, so a captured request cannot
    be replayed later."""
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [v for k, _, v in pairs if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(mac, v) for k, _, v in pairs if k == "v1")
