"""The addresses a job has read so far, in 11.4 to 22.9 bytes of memory each.

A Python ``set`` of ``str`` costs about 110 bytes an address: 174 MB at a
million rows, a gigabyte at ten million. This set keeps one 64-bit entry per
address in an open-addressing table (``array('Q')``, linear probing; once
past its first size 35 to 70 % full, so 8 / 0.7 to 8 / 0.35 bytes an
address, plus the last megabyte written, kept in memory): the top 24 bits of
the address's hash as a fingerprint and, in the low 40 bits, where the
address itself lies in an append-only, already-unlinked temporary file. An
address whose fingerprint matches is read back and compared in full, so two
different addresses are never taken
for one another, whatever their hashes: a hash only says where to look.

The hash is Python's own ``hash(str)`` (SipHash-1-3 with a key drawn at
random for each process), so a crafted file cannot predict its collisions
to make probing slow. The file holds each distinct address once (two bytes
of length plus the UTF-8 address); its pages sit in the page cache or on
disk, not in the process's memory, and it is gone when the set is closed or
the process ends. It is created in ``TMPDIR`` (``tempfile``'s choice, /tmp
by default) and encrypted with AES-256-CTR under a key drawn for each set
and held only in memory, so the addresses never reach a disk, a swapped
page or a backup in plain text. CTR, not GCM: any record is read back alone
at its offset, each offset is written once, and whoever could alter the
file (this user) could alter the process too. The last megabyte written is
kept in memory (in plain text), so a duplicate of a recent row is confirmed
without a system call; the file is encrypted a megabyte at a time.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable
from typing import IO, Final

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from mailsflux.jobs._seen import FLUSH, OFFSET_BITS, SeenTable

_M64: Final = (1 << 64) - 1
_OFFSET_BITS: Final = OFFSET_BITS  # the compiled add's entry layout
_OFFSET_MASK: Final = (1 << _OFFSET_BITS) - 1
#: Fill above which the table doubles: linear probing stays short below it.
LOAD: Final = 0.7
_FLUSH: Final = FLUSH


class SeenSet(SeenTable):
    """A set of strings sized for millions: :meth:`add` says whether it was new.

    ``add`` (and the append of a new address to the pending buffer) is
    compiled (:class:`mailsflux.jobs._seen.SeenTable`); the file, its
    encryption and the table's growth are here. ``hash`` is for tests that
    need collisions on purpose.
    """

    def __init__(self, *, capacity: int = 1 << 16, hash: Callable[[str], int] = hash):
        size = 1 << max(4, (capacity - 1).bit_length())
        self._hash = hash
        self._table = array("Q", [0]) * size
        self._mask = size - 1
        self._limit = int(size * LOAD)
        self._count = 0
        self._file: IO[bytes] | None = tempfile.TemporaryFile(prefix="mailsflux-seen-")
        self._fd = self._file.fileno()
        self._aes = algorithms.AES(os.urandom(32))
        # One record read back needs a few keystream blocks: AES-ECB of their
        # counter blocks, from one context, costs a fifth of a new CTR context.
        self._ecb = Cipher(self._aes, modes.ECB()).encryptor()  # noqa: S305 (CTR by hand)
        # The counter block of file offset 0; its low 64 bits count the
        # 16-byte blocks, which cannot run past them (offsets are 40 bits).
        self._ctr0 = int.from_bytes(os.urandom(8), "big") << 64
        # Offset 0 is never an address, so no entry is 0 (0 marks a free slot).
        self._pending = bytearray(b"\0")
        self._flushed = 0

    @property
    def nbytes(self) -> int:
        """Memory this set holds: the table and the unwritten tail of the file."""
        return self._table.itemsize * len(self._table) + len(self._pending)

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

    def _stream(self, at: int) -> CipherContext:
        """The AES-CTR keystream from file offset ``at`` on (XOR: both ways)."""
        counter = (self._ctr0 + at // 16).to_bytes(16, "big")
        ctx = Cipher(self._aes, modes.CTR(counter)).encryptor()
        ctx.update(bytes(at % 16))
        return ctx

    def _flush(self) -> None:
        view = memoryview(self._stream(self._flushed).update(bytes(self._pending)))
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
        head = self._decrypt(os.pread(self._fd, 66, at), at)
        n = int.from_bytes(head[:2], "big")
        data = head[2 : 2 + n]
        if len(data) < n:
            more = at + len(head)
            data += self._decrypt(os.pread(self._fd, n - len(data), more), more)
        return data.decode("utf-8", "surrogatepass")

    def _decrypt(self, data: bytes, at: int) -> bytes:
        """``data``, read at file offset ``at``, in plain text."""
        first, skip = divmod(at, 16)
        c0 = self._ctr0 + first
        blocks = b"".join(
            (c0 + k).to_bytes(16, "big") for k in range((skip + len(data) + 15) // 16)
        )
        n = len(data)
        stream = int.from_bytes(self._ecb.update(blocks)[skip : skip + n], "big")
        return (int.from_bytes(data, "big") ^ stream).to_bytes(n, "big")

    def _grow(self) -> None:
        """Double the table, re-reading the addresses from the file.

        The old table is dropped first, so growing never holds two tables.
        """
        self._flush()
        size = len(self._table) * 2
        self._table = array("Q")
        table = self._table = array("Q", [0]) * size
        mask = self._mask = size - 1
        self._limit = int(size * LOAD)
        hash_ = self._hash
        at = 1
        stream = self._stream(at)
        buf, pos = b"", 0
        while chunk := os.pread(self._fd, _FLUSH, at + len(buf) - pos):
            buf = buf[pos:] + stream.update(chunk)
            pos, size = 0, len(buf)
            while pos + 2 <= size:
                end = pos + 2 + (buf[pos] << 8 | buf[pos + 1])
                if end > size:
                    break  # the rest of this record is in the next chunk
                h = hash_(buf[pos + 2 : end].decode("utf-8", "surrogatepass")) & _M64
                i = h & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = ((h >> _OFFSET_BITS) << _OFFSET_BITS) | at
                at += end - pos
                pos = end
