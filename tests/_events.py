"""Reading an events file (JSON lines) the way the project does: sealed
personal fields opened with the spool key file's keys, old plain lines as
they are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mailsflux import sealedlines
from mailsflux.spool import SpoolKeys


def read_events(path: Path, key_file: Path | None = None) -> list[dict[str, Any]]:
    """Every event of ``path``, opened (default keys: the test's private spool's)."""
    keys = SpoolKeys.load(key_file or Path(os.environ["MAILSFLUX_SPOOL"]) / "keys", create=False)
    return list(sealedlines.read(path, keys))
