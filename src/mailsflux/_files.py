"""Secret files created whole or not at all (DKIM keys, spool keys)."""

from __future__ import annotations

import os
import tempfile
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
