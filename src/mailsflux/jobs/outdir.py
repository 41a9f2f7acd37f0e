"""Writing rendered messages into a folder: bounded names, no links followed.

The folder may hold files the user never meant to lose, or links planted
by someone else: a file is only ever created new (``O_EXCL``, which also
refuses any link), and replaced only when asked, by renaming a fresh file
over the name (a rename replaces a link itself, never its target).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from mailsflux.errors import OutputError

# Far below NAME_MAX (255 bytes on Linux, macOS and Windows): an address may
# be 254 characters and the name also holds the row and a suffix.
_MAX_STEM = 100
_HASH = 8


def eml_name(row: int, email: str) -> str:
    """``0000042-ada_at_example.com.eml``; a long address is cut and a hash of it appended."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", email.replace("@", "_at_"))
    if len(stem) > _MAX_STEM:
        digest = hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]
        stem = f"{stem[: _MAX_STEM - _HASH - 1]}-{digest}"
    return f"{row:07d}-{stem}.eml"


def make_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError("exists and is not a folder", file=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder: {exc.strerror}", file=str(out)) from None


def write_new(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` as a new file (0600: messages hold personal data).

    ``FileExistsError`` when the name is taken (by a file or a link) and not
    ``replace``; any other ``OSError`` is left to the caller.
    """
    if not replace:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["eml_name", "make_out_dir", "write_new"]
