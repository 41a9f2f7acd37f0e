"""`mailsflux` run as a process: its worker processes watched, or the modules it imports."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def children(pid: int) -> dict[int, bytes]:
    """The command lines of ``pid``'s child processes now."""
    found: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                if cmd:  # empty once it has exited (a zombie): keep what was seen
                    found[int(entry)] = cmd
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def send_watched(
    job: Path,
    *args: str,
    env: dict[str, str] | None = None,
    watch: Callable[[dict[int, bytes]], None] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[int, bytes], bytes]:
    """Run `mailsflux send`, recording its argv and its children's while it
    runs; ``watch`` is given the children seen so far, every 20 ms."""
    cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    # Read once it runs Python: just after the fork it still shows pytest's.
    argv = "\0".join(cmd).encode() + b"\0"
    deadline = time.monotonic() + 120
    own = b""
    while own != argv and proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            own = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        time.sleep(0.005)
    seen: dict[int, bytes] = {}
    while proc.poll() is None and time.monotonic() < deadline:
        seen.update(children(proc.pid))
        if watch is not None:
            watch(seen)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), seen, own


def imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``mailsflux ARGS``; its result and every module it imported."""
    # -X importtime lists every module the process imports, on stderr.
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mailsflux", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    mods = {
        ln.rsplit("|", 1)[1].strip()
        for ln in proc.stderr.splitlines()
        if ln.startswith("import time:") and ln.count("|") == 2
    }
    return proc, mods
