"""A private 3-master Redis Cluster: ``redis-server --cluster-enabled yes`` on free ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis

from tests._redis import spawn_server


def _free_pair() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class PrivateCluster:
    """Three masters, no replicas, on loopback; stopped on exit."""

    def __init__(self, masters: int = 3) -> None:
        exe = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if exe is None or cli is None:
            raise FileNotFoundError("redis-server or redis-cli is not installed")
        self.exe, self.cli = exe, cli
        self.ports: list[int] = []
        while len(self.ports) < masters:
            p = _free_pair()
            if p not in self.ports:
                self.ports.append(p)
        self.dir = tempfile.mkdtemp(prefix="mailsflux-cluster-")
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def __enter__(self) -> PrivateCluster:
        try:
            for port in self.ports:
                self.procs.append(
                    spawn_server(
                        self.exe,
                        port,
                        self.dir,
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                    )
                )
            for port in self.ports:
                self._wait(lambda p=port: bool(self.node(p).ping()))
            subprocess.run(
                [
                    self.cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            for port in self.ports:
                self._wait(lambda p=port: self.node(p).cluster("info")["cluster_state"] == "ok")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def _wait(ok: object) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if ok():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError, KeyError):
                pass
            time.sleep(0.1)
        raise TimeoutError("the private Redis Cluster did not come up")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
