"""A spawned worker that dies before its parent writes it the auth secret
(killed while starting) is reported by its exit code: the parent's write to
the closed pipe is not a traceback (it was, under uvloop, in CI)."""

from __future__ import annotations

import asyncio
import signal
import sys

from mailsflux.cli import _hand_over, _run

_DIE = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
_ECHO = "import sys; sys.stdout.write(sys.stdin.read(64)[::-1])"


async def _start(code: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )


def test_a_worker_dead_before_its_secret_is_written_is_its_exit_code() -> None:
    async def go() -> tuple[bytes, int | None]:
        proc = await _start(_DIE)
        await proc.wait()  # gone, and its pipes closed, before the parent writes
        out = await _hand_over(proc, b"ab" * 32)
        return out, proc.returncode

    assert _run(go()) == (b"", -signal.SIGKILL)


def test_a_live_worker_reads_the_secret_and_its_stdout_comes_back() -> None:
    async def go() -> tuple[bytes, int | None]:
        proc = await _start(_ECHO)
        out = await _hand_over(proc, b"0123456789abcdef" * 4)
        return out, proc.returncode

    assert _run(go()) == (b"fedcba9876543210" * 4, 0)
