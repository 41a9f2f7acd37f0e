from __future__ import annotations

import subprocess
import sys


def run_cli(
    *args: str, stdin: bytes | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mailsflux ARGS`` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "mailsflux", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_ok(*args: str) -> str:
    """``run_cli`` that must exit 0; its stdout."""
    got = run_cli(*args)
    assert got.returncode == 0, got.stderr
    return got.stdout
