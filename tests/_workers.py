"""``mailsflux worker`` processes for the scale-out tests, stopped afterwards whatever happens."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType


class Workers:
    """``n`` worker processes on ``redis_url`` under ``prefix``; each logs to a file in ``logs``."""

    def __init__(self, n: int, redis_url: str, prefix: str, logs: Path, *extra: str) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "mailsflux",
            "worker",
            "--redis",
            redis_url,
            "--prefix",
            prefix,
            *extra,
        ]
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        for _ in range(n):
            self.add()

    def add(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, i: int) -> str:
        return (self.logs / f"worker{i}.log").read_text("utf-8", "replace")

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
