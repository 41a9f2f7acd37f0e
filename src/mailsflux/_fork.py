"""Worker processes forked from a prepared parent (``send --workers N``).

A spawned worker starts Python again and pays the whole start-up the parent
already paid: the imports, the job read and checked, the DKIM key loaded,
the templates compiled (0.3 to 0.4 s of CPU a process). A forked one starts
with all of that in place. What must not cross the fork: a running event
loop, other threads (a lock one of them held stays held for ever in the
child), and open connections and files (SQLite, Redis, sockets), which each
child opens itself; the parent closes its own before it forks.

The parent gives each child its relay on a pipe (``--local-sink`` starts
the sink in the parent's event loop, after the fork) and the child's stdout
is another pipe, on which it writes its summary as a ``--shard`` worker
does. A child leaves by ``os._exit``: the parent's atexit handlers and
buffered output are the parent's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn

from mailsflux.errors import MailsfluxError

#: "spawn" makes ``send --workers`` start its workers as new processes even
#: where it could fork them (the way it works where there is no fork).
START_ENV = "MAILSFLUX_WORKER_START"


def why_not_fork() -> str | None:
    """Why this process cannot fork its workers now (None: it can)."""
    if not hasattr(os, "fork"):
        return "no fork on this system"
    if os.environ.get(START_ENV) == "spawn":
        return f"{START_ENV}=spawn"
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop()
        return "an event loop is running"
    if threading.active_count() != 1:
        return "other threads are running"
    # Threads Python does not know of (a C library's pool) are as unsafe.
    with contextlib.suppress(OSError):
        if len(os.listdir("/proc/self/task")) != 1:
            return "other threads are running"
    return None


class Forked:
    """A forked worker, seen from the parent; its ``returncode`` once it has
    exited is what :class:`asyncio.subprocess.Process` would say (minus the
    signal for one killed by a signal)."""

    def __init__(self, pid: int, out: int, go: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._out: int | None = out  # the child's stdout, read end
        self._go: int | None = go  # its start line, write end

    def fds(self) -> list[int]:
        """The parent's ends of this child's pipes (open ones)."""
        return [fd for fd in (self._out, self._go) if fd is not None]

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # a reaped pid may be another process's by now
            os.kill(self.pid, sig)

    def start(self, relay: str | None) -> None:
        """Let the child run, against ``relay`` (None: the job's own)."""
        if self._go is None:
            return
        try:
            os.write(self._go, (relay or "").encode() + b"\n")
        except BrokenPipeError:
            pass  # it died already: reported when it is reaped
        finally:
            os.close(self._go)
            self._go = None

    async def communicate(self) -> bytes:
        """Everything the child writes to its stdout, once it has exited."""
        assert self._out is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe = os.fdopen(self._out, "rb", buffering=0)
        self._out = None  # the transport's to close now
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        try:
            out = await reader.read()
        finally:
            transport.close()
        # The end of its stdout is its exit (os._exit): waiting is brief.
        self.reap()
        return out

    def reap(self) -> None:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        """Gone at once (the parent failed): as a spawned worker's transport does."""
        for fd in self.fds():
            os.close(fd)
        self._out = self._go = None
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.reap()


def fork_workers(n: int, run: Callable[[int, str | None], int]) -> list[Forked]:
    """Fork ``n`` children, each waiting for :meth:`Forked.start`, then
    running ``run(i, relay)`` with its stdout on a pipe to the parent and
    exiting with what it returns."""
    # Output buffered now would be written again by every child.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    # What the parent made (the job, its templates, the modules) lives on in
    # every child: frozen, the children's collections never walk it, nor
    # copy the pages whose reference counts a walk would write.
    gc.freeze()
    children: list[Forked] = []
    try:
        for i in range(n):
            out_r, out_w = os.pipe()
            go_r, go_w = os.pipe()
            try:
                pid = os.fork()
            except OSError as exc:  # EAGAIN, ENOMEM: no more processes
                for fd in (out_r, out_w, go_r, go_w):
                    os.close(fd)
                raise MailsfluxError(f"cannot start worker {i}/{n}: {exc.strerror}") from None
            if pid == 0:
                held = [fd for c in children for fd in c.fds()] + [out_r, go_w]
                _child(i, run, out_w, go_r, held)
            os.close(out_w)
            os.close(go_r)
            children.append(Forked(pid, out_r, go_w))
    except BaseException:
        for c in children:
            c.kill()
        raise
    finally:
        gc.unfreeze()  # in the parent (a child never comes back here)
    return children


def _child(
    i: int, run: Callable[[int, str | None], int], out: int, go: int, held: list[int]
) -> NoReturn:
    code = 1
    try:
        for fd in held:  # the parent's ends, and the other children's
            os.close(fd)
        os.dup2(out, 1)  # sys.stdout (flushed, empty) writes to the parent now
        os.close(out)
        line = _read_line(go)
        os.close(go)
        # No start line: the parent gave up before starting this child.
        code = run(i, line or None) if line is not None else 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _read_line(fd: int) -> str | None:
    """One line from ``fd`` (without its newline), None at end of file first."""
    got = b""
    while not got.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        got += chunk
    return got[:-1].decode()
