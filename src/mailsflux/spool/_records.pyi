"""Type stub for a spool commit's rows made and sealed in C (core/mailsflux/spool/_records.pyx)."""

from collections.abc import Callable, Container
from typing import Any

from mailsflux.spool.store import Record
from mailsflux.types import RenderedMessage

#: Values of one ``rcpt`` row after its job, and where the sealed part is among them.
COLUMNS: int
META_AT: int

def context(head: bytes, row: int, part: bytes) -> bytes:
    """A row's sealing context: ``head``, the row in decimal, a NUL, ``part``."""

def row_values(
    records: list[Record],
    head: bytes,
    now: float,
    claimed: float,
    encode_meta: Callable[[tuple[str, str, str, str | None]], bytes],
    encode_body: Callable[[RenderedMessage], bytes],
    final: Container[str],
) -> tuple[list[Any], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], list[int], list[int]]:
    """``(values, metas, bodies, body_rows, released)``: the rows' columns
    after the job, one row after another (the sealed part None), each row's part to seal with
    its context, each kept message's bytes with theirs and their rows, and
    the rows settled for good without a message."""

def seal_each(
    encrypt: Callable[[bytes, bytes, bytes], bytes],
    key_head: bytes,
    nonces: bytes,
    items: list[tuple[bytes, bytes]],
    blob: bool = False,
) -> list[bytes] | list[bytearray]:
    """Each ``(plain, context)`` sealed: ``key_head``, its share of
    ``nonces``, then ``encrypt(nonce, plain, context)``; as bytearrays
    with ``blob``."""
