"""Question: does a second ``mailsflux worker`` on the same Redis send faster, and
what does sharing a send through Redis cost in Redis work per message?

The example job (RSA-2048, tracking on) is put into a private
``redis-server`` (AOF on, fsync every second, as the README asks) with the
same code ``send --redis`` runs, then ``worker --until-idle`` processes send
it into Postfix's ``smtp-sink``: one worker, then two, alternating the
order each round, in the same run. Wall time from the workers' start to the
last one's exit (process start included), and the workers' CPU time per
message, the median of the rounds. Redis
requests per message in one more run of each, watched with ``MONITOR``:
the commands clients send (not those Lua scripts run inside the server),
from the workers and the enqueuer; a pipeline's commands count one each,
so this bounds the round trips from above. The issue's target: two
workers at least 1.7x one on this 2-core machine.

    .venv/bin/python bench/bench_redis_workers.py [ROWS] [ROUNDS]
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import redis

from _example import make_job
from _machine import describe
from bench_pipeline_sink import smtp_sink, smtp_sink_path
from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.prepared import make_signer
from mailsflux.jobs.worker import enqueue
from mailsflux.spool import SpoolKeys
from mailsflux.spool.redis_spool import RedisSpool


@contextmanager
def private_redis() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    where = tempfile.mkdtemp(prefix="mf-bench-redis-")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", where, "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    proc = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(where, ignore_errors=True)


class Requests:
    """Counts the commands clients send, from ``MONITOR`` (script internals left out)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.n = 0
        self._mon = self.client.monitor()
        self._mon.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for cmd in self._mon.listen():
                if cmd.get("client_type") != "lua":
                    self.n += 1

    def stop(self) -> int:
        time.sleep(0.2)  # the last lines on their way
        with contextlib.suppress(Exception):
            self._mon.connection.disconnect()
        self._thread.join(5)
        self.client.close()
        return self.n


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_run(
    url: str, job_path: Path, port: int, workers: int, keys: Path, *, count: bool = False
) -> tuple[float, float, int]:
    """Enqueue the job afresh, run ``workers`` workers until idle: (wall s, CPU s, requests)."""
    client = redis.Redis.from_url(url)
    client.flushall()
    watch = Requests(url) if count else None
    with RedisSpool(url, key_file=keys) as spool:
        enqueue(spool, load_job(job_path), on_problem=lambda p: None)
    cmd = [sys.executable, "-m", "mailsflux", "worker", "--redis", url, "--key-file", str(keys)]
    cmd += ["--until-idle", "--relay", f"smtp+plain://127.0.0.1:{port}"]
    start, cpu = time.perf_counter(), _cpu()
    procs = [subprocess.Popen(cmd, stderr=subprocess.DEVNULL) for _ in range(workers)]
    for p in procs:
        p.wait()
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    used = watch.stop() if watch is not None else 0
    with RedisSpool(url, key_file=keys) as spool:
        counts = spool.counts(spool.jobs()[0].id)
    client.close()
    rows = sum(counts.values())
    assert counts.get("delivered", 0) == rows, counts
    return elapsed, cpu, used


def measure(rows: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": rows, "rounds": rounds}
    keys = Path(tempfile.mkdtemp(prefix="mf-bench-keys-")) / "keys"
    SpoolKeys.load(keys, create=True)
    job = make_job(rows, connections=8, algorithm="rsa-sha256")
    make_signer(load_job(job))  # the key exists before the workers look for it
    wall: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    cmds: dict[int, float] = {}
    with smtp_sink() as port, private_redis() as url:
        for r in range(rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                t, c, _ = one_run(url, job, port, n, keys)
                wall[n].append(t)
                cpu[n].append(c / rows)
        for n in (1, 2):
            cmds[n] = one_run(url, job, port, n, keys, count=True)[2] / rows
    for n in (1, 2):
        out[f"rate{n}"] = rows / statistics.median(wall[n])
        out[f"cmds{n}"] = cmds[n]
        out[f"cpu{n}"] = statistics.median(cpu[n])
    return out


def report(r: dict[str, Any]) -> None:
    print(describe())
    print(
        f"example job, RSA-2048, {r['rows']} rows, smtp-sink on loopback, private redis-server"
        f" (AOF everysec); median of {r['rounds']} rounds, one and two workers alternating"
    )
    for n in (1, 2):
        print(
            f"  {n} worker{'s' if n > 1 else ' '}  {r[f'rate{n}']:8.0f} msg/s"
            f"   {r[f'cpu{n}'] * 1e6:6.0f} us worker CPU/msg"
            f"   {r[f'cmds{n}']:5.3f} Redis requests per message"
        )
    print(f"  two workers / one: {r['rate2'] / r['rate1']:.2f}x")


try:
    import pytest

    @pytest.mark.skipif(
        smtp_sink_path() is None or shutil.which("redis-server") is None,
        reason="smtp-sink or redis-server not installed",
    )
    def test_redis_workers(benchmark: Any) -> None:
        result = benchmark.pedantic(measure, args=(400, 1), rounds=1, iterations=1)
        report(result)
except ImportError:
    pass


if __name__ == "__main__":
    os.environ.setdefault("MAILSFLUX_SPOOL", tempfile.mkdtemp(prefix="mf-bench-spool-"))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    report(measure(n, rounds))
