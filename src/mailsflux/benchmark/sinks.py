"""Servers to deliver into: Postfix's ``smtp-sink`` when installed, else the
built-in sink (``python -m mailsflux.delivery.sink``), each a child process
on a free loopback port.

Both are left running (not reaped) while the client is measured, so their
CPU time never shows up in the client's ``RUSAGE_CHILDREN``.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailsflux.benchmark.result import BenchError


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"smtp-sink exited at start (status {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError("smtp-sink did not start listening within 10 s")


@dataclass
class Sink:
    kind: str
    port: int
    #: What the built-in sink counted (filled in when it stops).
    tally: dict[str, Any] = field(default_factory=dict)


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    exe = smtp_sink_path()
    if exe is None:
        raise BenchError("smtp-sink not found (Debian package postfix)")
    port = _free_port()
    # -u nobody: smtp-sink refuses to keep root privileges. 256: backlog.
    proc = subprocess.Popen(
        [exe, "-u", "nobody", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL
    )
    try:
        _wait_listening(port, proc)
        yield Sink("smtp-sink", port)
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def builtin_sink() -> Iterator[Sink]:
    cmd = [sys.executable, "-m", "mailsflux.delivery.sink", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        parts = proc.stdout.readline().decode().split()
        if len(parts) != 3 or parts[0] != "LISTENING":
            raise BenchError("the built-in sink did not start")
        sink = Sink("mailsflux sink", int(parts[2]))
        yield sink
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    for line in out.decode().splitlines():
        if line.startswith("{"):
            sink.tally = json.loads(line)


def sink(kind: str = "auto") -> Any:
    """``auto``: smtp-sink when installed, else the built-in one."""
    if kind == "smtp-sink" or (kind == "auto" and smtp_sink_path() is not None):
        return smtp_sink()
    return builtin_sink()
