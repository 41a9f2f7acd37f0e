"""The addresses a job must never mail: a list file and the event store's list.

Checked for every row before anything is rendered, and again before every
retry, so an unsubscribe that arrives while a message waits for its next
attempt still stops it.
"""

from __future__ import annotations

from pathlib import Path

from mailsflux.compose import normalize_address
from mailsflux.errors import RecipientError
from mailsflux.tracking.events import SuppressionView


def read_list(path: Path) -> set[str]:
    """One address per line; blank lines and ``#`` comments are ignored."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise RecipientError("suppression list not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipientError(f"cannot read suppression list: {exc}", file=str(path)) from None
    out: set[str] = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.add(normalize_address(entry))
    return out


class Suppression:
    """``address in suppression``: listed in the file or in the store."""

    def __init__(self, listed: set[str] | None = None, view: SuppressionView | None = None):
        self._listed = listed or set()
        self._view = view

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        if self._listed and normalize_address(address) in self._listed:
            return True
        return self._view is not None and address in self._view

    def add(self, address: str) -> None:
        if self._view is not None:
            self._view.add(address)
        else:
            self._listed.add(normalize_address(address))
