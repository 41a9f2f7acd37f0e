"""Row problems, reported without drowning the reader.

A per-row problem is worth a line each while it is rare; when one problem
hits thousands of rows (a short CSV, a list of duplicates), the first few
lines show it and a count says the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailsflux.types import Problem

#: Lines shown per kind of problem before the rest are only counted.
CAP = 20
#: Kinds tracked at most: rows whose messages are all different (each its own
#: bad address) are shown as they come, without the tally growing per row.
_KINDS = 10_000

_ADDRESS = re.compile(r"[^\s:;()<>,']+@[^\s:;()<>,']+")
_NUMBER = re.compile(r"\d+")


def problem_kind(p: Problem) -> tuple[str, str]:
    """What makes two row problems "the same": the message without its row's
    own details (line numbers, the recipient's address)."""
    return p.severity, _NUMBER.sub("#", _ADDRESS.sub("<address>", p.message))


class CappedProblems:
    """Passes each kind of problem on ``cap`` times, then only counts it.

    :meth:`finish` reports each kind that went over, as one line.
    """

    def __init__(self, sink: Callable[[Problem], None], *, where: str, cap: int = CAP) -> None:
        self.sink = sink
        self.where = where
        self.cap = cap
        self._count: dict[tuple[str, str], int] = {}
        self._first: dict[tuple[str, str], str] = {}

    def __call__(self, p: Problem) -> None:
        kind = problem_kind(p)
        n = self._count.get(kind, 0) + 1
        if n == 1 and len(self._count) >= _KINDS:
            self.sink(p)
            return
        self._count[kind] = n
        if n == 1:
            self._first[kind] = p.where
        if n <= self.cap:
            self.sink(p)

    def finish(self) -> None:
        for kind, n in self._count.items():
            if n > self.cap:
                more = n - self.cap
                rows = "row" if more == 1 else "rows"
                self.sink(
                    Problem(
                        self.where,
                        f"... and {more} more {rows} with the same problem as {self._first[kind]}",
                        "error" if kind[0] == "error" else "warning",
                    )
                )
        self._count.clear()
        self._first.clear()
