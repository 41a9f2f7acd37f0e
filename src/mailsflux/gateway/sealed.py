"""Recipient rows at rest: sealed one by one, never in the clear on disk.

An API job's rows (addresses and merge data) wait on disk until they are
handed on, and must survive a restart, so each is sealed with the tenant
spool's AES-256-GCM keys, bound to its job and row number (a row moved or
altered does not open). A file is a sequence of ``length (4 bytes, big
endian) || sealed row``.

An upload is different: it lives only while its request does. It is spilled
to disk encrypted with AES-256-CTR under a key drawn for it and held only in
memory, so a crash leaves ciphertext nobody can read.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mailsflux.errors import SpoolError
from mailsflux.spool import SpoolKeys

_LEN = struct.Struct(">I")


def _ctx(job: str, row: int) -> bytes:
    return f"api-row\x00{job}\x00{row}".encode()


def write_rows(path: Path, job: str, rows: Iterable[bytes], keys: SpoolKeys) -> int:
    """Seal and write every row (fsynced); returns how many."""
    n = 0
    with path.open("wb") as f:
        os.chmod(path, 0o600)
        for line in rows:
            n += 1
            sealed = keys.seal(line, _ctx(job, n))
            f.write(_LEN.pack(len(sealed)) + sealed)
        f.flush()
        os.fsync(f.fileno())
    return n


def read_rows(path: Path, job: str, keys: SpoolKeys, *, after: int = 0) -> Iterator[bytes]:
    """The rows after row ``after``, opened (skipped ones are not decrypted)."""
    n = 0
    with path.open("rb") as f:
        while head := f.read(4):
            if len(head) < 4:
                raise SpoolError("a job's rows file is cut short", file=str(path))
            (size,) = _LEN.unpack(head)
            sealed = f.read(size)
            if len(sealed) < size:
                raise SpoolError("a job's rows file is cut short", file=str(path))
            n += 1
            if n > after:
                yield keys.open(sealed, _ctx(job, n))


def reseal_rows(path: Path, job: str, keys: SpoolKeys) -> int:
    """Seal every row of ``path`` again under the newest key (after a
    rotation), row numbers kept; the file is replaced whole, so a feeder
    reading the old one goes on reading it (its key is still in the ring)."""
    tmp = path.with_name(f".{path.name}.reseal")
    n = write_rows(tmp, job, read_rows(path, job, keys), keys)
    os.replace(tmp, path)
    return n


class Spill:
    """A file written encrypted (AES-256-CTR, a key only this object holds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = secrets.token_bytes(32)
        self._nonce = secrets.token_bytes(16)
        self._out: IO[bytes] | None = None
        self._enc = Cipher(algorithms.AES(self._key), modes.CTR(self._nonce)).encryptor()

    def write(self, chunk: bytes) -> None:
        if self._out is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._out = os.fdopen(fd, "wb")
        self._out.write(self._enc.update(chunk))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def open_text(self) -> io.TextIOWrapper:
        """The plain text back, streamed (CSV reading)."""
        dec = Cipher(algorithms.AES(self._key), modes.CTR(self._nonce)).decryptor()
        raw = _Decrypting(self.path.open("rb"), dec)
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8-sig", newline="")


class _Decrypting(io.RawIOBase):
    def __init__(self, f: IO[bytes], dec: object) -> None:
        self._f = f
        self._dec = dec

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        if not data:
            return 0
        plain = self._dec.update(data)  # type: ignore[attr-defined]
        b[: len(plain)] = plain
        return len(plain)

    def close(self) -> None:
        self._f.close()
        super().close()
