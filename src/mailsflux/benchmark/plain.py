"""The plain-Python way, as a careful developer would write it without Mailsflux.

``re`` substitution for the templates, stdlib ``email`` for MIME, ``re`` +
``hmac`` for link tracking, ``dkimpy`` for signing (a test extra: callers
check :func:`have_dkimpy`), ``aiosmtplib`` for delivery. What the
benchmarks measure Mailsflux against; the bench/ scripts use it too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html as htmlmod
import re
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

_TAG = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
_SECTION = re.compile(r"\{\{([#^])(\w+)\}\}(.*?)\{\{/\2\}\}", re.S)
_HREF = re.compile(r'href="(https?://[^"]+)"')
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]


def have_dkimpy() -> bool:
    try:
        import dkim  # noqa: F401
    except ImportError:
        return False
    return True


def subst(src: str, data: Mapping[str, Any], escape: bool) -> str:
    """Sections as truthiness blocks, then variables substituted."""
    src = _SECTION.sub(
        lambda m: m.group(3) if bool(data.get(m.group(2))) != (m.group(1) == "^") else "", src
    )
    return _TAG.sub(
        lambda m: (
            htmlmod.escape(str(data.get(m.group(1), "")))
            if escape
            else str(data.get(m.group(1), ""))
        ),
        src,
    )


def mime(*, sender: str, to: str, subject: str, text: str, html: str, domain: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def rewrite(html: str, *, key: bytes, base: str, message_id: str, recipient: str) -> str:
    """Every http(s) link through ``{base}/c/{token}``, the token an HMAC."""

    def link(m: re.Match[str]) -> str:
        payload = f"{message_id}|{recipient}|{m.group(1)}".encode()
        mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        token = base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()
        return f'href="{base}/c/{token}"'

    return _HREF.sub(link, html)


def dkim_sign(
    raw: bytes, *, key_pem: bytes, selector: str, domain: str, algorithm: str = "rsa-sha256"
) -> bytes:
    """dkimpy: the DKIM-Signature field + the message."""
    import dkim

    if algorithm == "ed25519-sha256":
        # dkimpy wants the raw 32-byte Ed25519 seed, base64-encoded.
        from cryptography.hazmat.primitives import serialization

        k = serialization.load_pem_private_key(key_pem, None)
        seed = k.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        key_pem = base64.b64encode(seed)
    sig: bytes = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=SIGNED_HEADERS,
        signature_algorithm=algorithm.encode(),
    )
    return sig + raw


async def aiosmtplib_send(
    host: str, port: int, items: Iterable[tuple[str, str, bytes]], connections: int = 8
) -> int:
    """Send (from, to, message) items over ``connections`` reused
    connections, lock-step as aiosmtplib does; returns how many were sent."""
    import aiosmtplib

    queue: asyncio.Queue[tuple[str, str, bytes] | None] = asyncio.Queue(maxsize=connections * 16)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        async with aiosmtplib.SMTP(hostname=host, port=port, start_tls=False) as client:
            while (item := await queue.get()) is not None:
                await client.sendmail(item[0], [item[1]], item[2])
                sent += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
    for item in items:
        if any(t.done() for t in tasks):
            break  # a worker failed: stop feeding, let gather raise its error
        await queue.put(item)
    for _ in tasks:
        await queue.put(None)
    await asyncio.gather(*tasks)
    return sent


class PlainSpool:
    """Results and held messages in SQLite with the stdlib: a table each, a
    JSON row per result, WAL (what a careful developer would write; no
    encryption, no claims)."""

    def __init__(self, path: str) -> None:
        import sqlite3

        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS result (job TEXT, row INTEGER, state TEXT, meta TEXT,"
            " PRIMARY KEY (job, row))"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS held (job TEXT, row INTEGER PRIMARY KEY, data BLOB)"
        )

    def store(self, job: str, results: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        """One transaction for a batch of (row, state, details) results."""
        import json

        rows = [(job, row, state, json.dumps(meta)) for row, state, meta in results]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT OR REPLACE INTO result VALUES (?,?,?,?)", rows)
        self.db.execute("COMMIT")

    def hold(self, job: str, data: bytes) -> int:
        """Store one message, committed, under a new row; returns the row."""
        self.db.execute("BEGIN IMMEDIATE")
        cur = self.db.execute("INSERT INTO held (job, data) VALUES (?, ?)", (job, data))
        self.db.execute("COMMIT")
        return cur.lastrowid or 0

    def close(self) -> None:
        self.db.close()
