"""A real Redis for the tests: the configured one, the local one, or a private one.

Order: ``MAILSFLUX_TEST_REDIS_URL``; else 127.0.0.1:6379 if it answers; else a
private ``redis-server`` started on a free port (no persistence) and stopped
after the session.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis


def answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_server(exe: str, port: int, where: str, *extra: str) -> subprocess.Popen[bytes]:
    """A ``redis-server`` on loopback ``port``, no persistence, files in ``where``."""
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", where, *extra]
    return subprocess.Popen(
        [exe, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class PrivateRedis:
    """A ``redis-server`` of our own on a free loopback port."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
        )
        if exe is None:
            raise FileNotFoundError("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mailsflux-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    #: More ``redis-server`` options (later ones win).
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = spawn_server(self.exe, self.port, self.dir, *self.extra)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if answers(self.url):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class CountingRedis(aioredis.Redis):
    """A real client that counts the commands it sends (one each: no pipelining here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: collections.Counter[str] = collections.Counter()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.calls[str(args[0]).upper()] += 1
        return await super().execute_command(*args, **options)


def outbox_counts(url: str, prefix: str) -> dict[str, int]:
    """The counts per state of the one engine outbox job under ``prefix``."""
    client = redis.Redis.from_url(url)
    try:
        (counts,) = [client.hgetall(k) for k in client.scan_iter(f"{prefix}:{{outbox-*}}:n")]
    finally:
        client.close()
    return {k.decode(): int(v) for k, v in counts.items() if int(v)}


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """A private ``redis-server`` for one test (skipped where none is installed)."""
    import pytest

    try:
        server = PrivateRedis().start()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    try:
        yield server.url
    finally:
        server.stop()


def wait_for(what: str, check: Callable[[], object], timeout: float = 90) -> None:
    """Until ``check()`` is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def enqueued(job: Path, url: str, prefix: str, *opts: str) -> Iterator[subprocess.Popen[str]]:
    """``send JOB --json --redis URL`` running once all its rows are in Redis
    (it follows the job until every batch is settled); killed afterwards if
    still running."""
    cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "--json"]
    cmd += ["--redis", url, "--prefix", prefix, *opts]
    send = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = redis.Redis.from_url(url)
    try:
        wait_for("the rows in Redis", lambda: list(client.scan_iter(f"{prefix}:*:end")))
        yield send
    finally:
        client.close()
        if send.poll() is None:
            send.kill()
            send.wait()


class AOFRedis(PrivateRedis):
    """A private redis-server with AOF (fsync every second) that can be killed
    and restarted on the same files (skipped where none is installed)."""

    extra = ("--appendonly", "yes", "--appendfsync", "everysec")

    def __init__(self) -> None:
        try:
            super().__init__()
        except FileNotFoundError:
            import pytest

            pytest.skip("redis-server is not installed")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
