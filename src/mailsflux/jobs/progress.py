"""A dependency-free progress bar on stderr, redrawn at most 10 times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.monotonic()
        self._drawn = 0.0
        self._tty = self.stream.isatty()
        self._last_pct = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._drawn >= 0.1 or self.done >= self.total:
            self._drawn = now
            self.draw()

    def draw(self) -> None:
        frac = min(self.done / self.total, 1.0)
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"[{bar}] {self.done}/{self.total} {frac:4.0%} {rate:8.0f} msg/s"
        if self._tty:
            self.stream.write("\r" + text)
        else:
            # Not a terminal (CI, a log file): one line per 10 percent.
            pct = int(frac * 10)
            if pct == self._last_pct:
                return
            self._last_pct = pct
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, *, complete: bool = True) -> None:
        # A finished job's bar shows what was done (suppressed rows and the
        # like); a stopped one keeps its total, to show how far it got.
        if complete:
            self.total = max(self.done, 1)
        self._last_pct = -1
        self.draw()
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
