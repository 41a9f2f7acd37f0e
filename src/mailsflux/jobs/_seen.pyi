"""Type stub for the compiled half of the duplicate set (core/mailsflux/jobs/_seen.pyx)."""

from array import array
from collections.abc import Callable

FLUSH: int
OFFSET_BITS: int

class SeenTable:
    _table: array[int]
    _mask: int
    _limit: int
    _count: int
    _flushed: int
    _pending: bytearray
    _hash: Callable[[str], int]
    def __len__(self) -> int: ...
    def add(self, key: str) -> bool:
        """Add ``key``; True when it is new, False when it was there already."""
