"""Private files created or replaced whole (DKIM keys, spool keys, caches)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def create_whole(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600 from the start) holding ``data``; False if it exists.

    Written and fsynced under a temporary name beside it, then linked into
    place: a crash never leaves an empty or partial file, and of two
    processes creating it at once one wins and the other keeps the winner's.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    return True


def replace_whole(path: Path, data: bytes, *, sync: bool = False, keep_times: bool = False) -> None:
    """Replace ``path`` with ``data`` (mode 0600): written under a private
    temporary name beside it and renamed into place, so a reader or a crash
    sees the old file or the new one, never a part, and two writers never
    share a temporary file. ``sync``: on the disk before it takes the old
    file's place (a crash then leaves one or the other whole). ``keep_times``:
    the new file keeps the old one's times (where its age is read from)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        if keep_times:
            old = path.stat()
            os.utime(tmp, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``PATH.lock`` (0600) for a read-modify-write
    of ``path`` that other processes may be doing too."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
