"""The addresses a job must never mail: a list file and the event store's list.

Checked for every row before anything is rendered, and again before every
retry, so an unsubscribe that arrives while a message waits for its next
attempt still stops it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
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
        return isinstance(address, str) and self.among([address]) is not None

    def among(self, addresses: Sequence[str]) -> list[bool] | None:
        """``[a in self for a in addresses]``, or None when none of them is
        suppressed: a batch of rows checked with one look for the store's
        changes, and none of the keyed hashes while it suppresses nobody."""
        hits = self._view.among(addresses) if self._view is not None else None
        if self._listed:
            listed = self._listed
            mine = [normalize_address(a) in listed for a in addresses]
            if any(mine):
                hits = mine if hits is None else [a or b for a, b in zip(mine, hits, strict=True)]
        return hits

    def add(self, address: str) -> None:
        if self._view is not None:
            self._view.add(address)
        else:
            self._listed.add(normalize_address(address))


def suppressed_among(suppressed: Container[str], addresses: Sequence[str]) -> list[bool] | None:
    """Which of ``addresses`` are in ``suppressed``, or None when none is
    (a :class:`Suppression` a batch at a time, any other container each)."""
    if isinstance(suppressed, Suppression):
        return suppressed.among(addresses)
    hits = [a in suppressed for a in addresses]
    return hits if any(hits) else None
