"""Benchmarks keep their spool and data in folders of their own, never in the
user's ~/.local/state: under pytest (``conftest.py``) and run as scripts."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

#: What a benchmark's jobs and engines would otherwise write to the user's state dir.
STATE_VARIABLES = ("MAILSFLUX_SPOOL", "MAILSFLUX_HOME")


@contextmanager
def private_state() -> Iterator[str]:
    """``MAILSFLUX_SPOOL`` and ``MAILSFLUX_HOME`` in a temporary folder (which
    it yields) for the duration; subprocesses inherit them."""
    before = {name: os.environ.get(name) for name in STATE_VARIABLES}
    with tempfile.TemporaryDirectory(prefix="mailsflux-bench-") as where:
        for name in STATE_VARIABLES:
            os.environ[name] = os.path.join(where, name.rsplit("_", 1)[1].lower())
        try:
            yield where
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
