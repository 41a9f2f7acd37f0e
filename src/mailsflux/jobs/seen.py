"""The addresses a job has read so far, in 8 to 16 bytes of memory each.

A Python ``set`` of ``str`` costs about 110 bytes an address: 174 MB at a
million rows, a gigabyte at ten million. This set keeps one 64-bit entry per
address in an open-addressing table (``array('Q')``, linear probing, at
most 70 % full): the top 24 bits of the address's hash as a fingerprint and,
in the low 40 bits, where the address itself lies in an append-only,
already-unlinked temporary file. An address whose fingerprint matches is
read back and compared in full, so two different addresses are never taken
for one another, whatever their hashes: a hash only says where to look.

The hash is Python's own ``hash(str)`` (SipHash-1-3 with a key drawn at
random for each process), so a crafted file cannot predict its collisions
to make probing slow. The file holds each distinct address once (two bytes
of length plus the UTF-8 address); its pages sit in the page cache or on
disk, not in the process's memory, and it is gone when the set is closed or
the process ends. The last megabyte written is kept in memory, so a
duplicate of a recent row is confirmed without a system call.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable
from typing import IO, Final

_M64: Final = (1 << 64) - 1
_OFFSET_BITS: Final = 40
_OFFSET_MASK: Final = (1 << _OFFSET_BITS) - 1
#: Fill above which the table doubles: linear probing stays short below it.
_LOAD: Final = 0.7
_FLUSH: Final = 1 << 20


class SeenSet:
    """A set of strings sized for millions: :meth:`add` says whether it was new.

    ``hash`` is for tests that need collisions on purpose.
    """

    def __init__(self, *, capacity: int = 1 << 16, hash: Callable[[str], int] = hash):
        size = 1 << max(4, (capacity - 1).bit_length())
        self._hash = hash
        self._table = array("Q", [0]) * size
        self._mask = size - 1
        self._limit = int(size * _LOAD)
        self._count = 0
        self._file: IO[bytes] | None = tempfile.TemporaryFile(prefix="mailsflux-seen-")
        self._fd = self._file.fileno()
        # Offset 0 is never an address, so no entry is 0 (0 marks a free slot).
        self._pending = bytearray(b"\0")
        self._flushed = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Memory this set holds: the table and the unwritten tail of the file."""
        return self._table.itemsize * len(self._table) + len(self._pending)

    def add(self, key: str) -> bool:
        """Add ``key``; True when it is new, False when it was there already."""
        h = self._hash(key) & _M64
        fp = h >> _OFFSET_BITS
        table, mask = self._table, self._mask
        i = h & mask
        while e := table[i]:
            if e >> _OFFSET_BITS == fp and self._read(e & _OFFSET_MASK) == key:
                return False
            i = (i + 1) & mask
        table[i] = (fp << _OFFSET_BITS) | self._append(key)
        self._count += 1
        if self._count > self._limit:
            del table  # or the old table would live on beside the new one
            self._grow()
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._table = array("Q")
        self._pending = bytearray()

    def __enter__(self) -> SeenSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _append(self, key: str) -> int:
        data = key.encode("utf-8", "surrogatepass")
        n = len(data)
        pending = self._pending
        at = self._flushed + len(pending)
        if n > 0xFFFF or at + n > _OFFSET_MASK:
            raise ValueError("address longer than 65,535 bytes, or a terabyte of them")
        pending += n.to_bytes(2, "big")
        pending += data
        if len(pending) >= _FLUSH:
            self._flush()
        return at

    def _flush(self) -> None:
        view = memoryview(self._pending)
        while view:
            n = os.pwrite(self._fd, view, self._flushed)
            self._flushed += n
            view = view[n:]
        view.release()
        self._pending = bytearray()

    def _read(self, at: int) -> str:
        if at >= self._flushed:
            p = at - self._flushed
            n = int.from_bytes(self._pending[p : p + 2], "big")
            return self._pending[p + 2 : p + 2 + n].decode("utf-8", "surrogatepass")
        head = os.pread(self._fd, 258, at)
        n = int.from_bytes(head[:2], "big")
        data = head[2 : 2 + n]
        if len(data) < n:
            data += os.pread(self._fd, n - len(data), at + len(head))
        return data.decode("utf-8", "surrogatepass")

    def _grow(self) -> None:
        """Double the table, re-reading the addresses from the file.

        The old table is dropped first, so growing never holds two tables.
        """
        self._flush()
        size = len(self._table) * 2
        self._table = array("Q")
        table = self._table = array("Q", [0]) * size
        mask = self._mask = size - 1
        self._limit = int(size * _LOAD)
        hash_ = self._hash
        at = 1
        with open(self._fd, "rb", buffering=1 << 20, closefd=False) as fh:
            fh.seek(at)
            while head := fh.read(2):
                n = int.from_bytes(head, "big")
                key = fh.read(n).decode("utf-8", "surrogatepass")
                h = hash_(key) & _M64
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = ((h >> _OFFSET_BITS) << _OFFSET_BITS) | at
                at += 2 + n
