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

Where the time goes: each size of job is also run with one batch (64 rows):
its wall and CPU time are the fixed cost (process start, job and key load,
noticing the end), taken out to give the rate and CPU a message past it.
The CPU of ``redis-server`` and ``smtp-sink`` a message (from /proc, each
printed apart: only Redis's is Mailsflux's work) bounds
the ratio from above: two workers share two cores with them, one worker
has at best a core of its own.

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


def _peers_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's redis-server and smtp-sink children
    (they run through the whole bench, so RUSAGE_CHILDREN does not see them)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"redis-server": 0.0, "smtp-sink": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text[text.rindex(")") + 2 :].split()
            if name in out and int(fields[1]) == os.getpid():
                out[name] += (int(fields[11]) + int(fields[12])) / tick
    return out


def one_run(
    url: str, job_path: Path, port: int, workers: int, keys: Path, *, count: bool = False
) -> tuple[float, float, int, dict[str, float], dict[str, Any]]:
    """Enqueue the job afresh, run ``workers`` workers until idle: (wall s,
    workers' CPU s, requests, the peers' CPU s, Redis's ``INFO commandstats``
    for the workers' run)."""
    client = redis.Redis.from_url(url)
    client.flushall()
    watch = Requests(url) if count else None
    with RedisSpool(url, key_file=keys) as spool:
        enqueue(spool, load_job(job_path), on_problem=lambda p: None)
    cmd = [sys.executable, "-m", "mailsflux", "worker", "--redis", url, "--key-file", str(keys)]
    cmd += ["--until-idle", "--relay", f"smtp+plain://127.0.0.1:{port}"]
    client.config_resetstat()  # the workers' commands only, not the enqueuer's
    peers = _peers_cpu()
    start, cpu = time.perf_counter(), _cpu()
    procs = [subprocess.Popen(cmd, stderr=subprocess.DEVNULL) for _ in range(workers)]
    for p in procs:
        p.wait()
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    peers = {k: v - peers[k] for k, v in _peers_cpu().items()}
    used = watch.stop() if watch is not None else 0
    stats = client.info("commandstats")
    with RedisSpool(url, key_file=keys) as spool:
        counts = spool.counts(spool.jobs()[0].id)
    client.close()
    rows = sum(counts.values())
    assert counts.get("delivered", 0) == rows, counts
    return elapsed, cpu, used, peers, stats


def measure(rows: int, rounds: int) -> dict[str, Any]:
    """Both sizes of job (``rows`` and one batch, the fixed cost: process
    start, job load, the end) with one and two workers, interleaved."""
    out: dict[str, Any] = {"rows": rows, "rounds": rounds, "load": [os.getloadavg()[0]]}
    keys = Path(tempfile.mkdtemp(prefix="mf-bench-keys-")) / "keys"
    SpoolKeys.load(keys, create=True)
    small = 64
    jobs = {n: make_job(n, connections=8, algorithm="rsa-sha256") for n in (rows, small)}
    for j in jobs.values():
        make_signer(load_job(j))  # the key exists before the workers look for it
    wall: dict[tuple[int, int], list[float]] = {}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    fixed_cpu: dict[int, list[float]] = {1: [], 2: []}
    peer: dict[tuple[int, str], list[float]] = {}
    stats: dict[int, dict[str, Any]] = {}
    cmds: dict[int, float] = {}
    with smtp_sink() as port, private_redis() as url:
        for r in range(rounds):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                for size in (rows, small):
                    t, c, _, p, stats_n = one_run(url, jobs[size], port, n, keys)
                    wall.setdefault((n, size), []).append(t)
                    if size == rows:
                        cpu[n].append(c / rows)
                        for name, used in p.items():
                            peer.setdefault((n, name), []).append(used / rows)
                        stats[n] = stats_n  # the last round's
                    else:
                        fixed_cpu[n].append(c)
            out["load"].append(os.getloadavg()[0])
        for n in (1, 2):
            cmds[n] = one_run(url, jobs[rows], port, n, keys, count=True)[2] / rows
    for n in (1, 2):
        big, fixed = statistics.median(wall[n, rows]), statistics.median(wall[n, small])
        out[f"rate{n}"] = rows / big
        out[f"fixed{n}"] = fixed
        # Past the fixed cost: what the workers do per message once running.
        out[f"steady{n}"] = (rows - small) / max(big - fixed, 1e-9)
        out[f"cmds{n}"] = cmds[n]
        out[f"cpu{n}"] = statistics.median(cpu[n])
        out[f"fixed_cpu{n}"] = statistics.median(fixed_cpu[n])
        # A message's own CPU: the small job's (start-up, the end) taken out.
        out[f"msg_cpu{n}"] = (out[f"cpu{n}"] * rows - out[f"fixed_cpu{n}"]) / (rows - small)
        # Only redis-server's share is Mailsflux's doing (its commands); smtp-sink's is the test's.
        out[f"redis{n}"] = statistics.median(peer[n, "redis-server"])
        out[f"sink{n}"] = statistics.median(peer[n, "smtp-sink"])
        out[f"peers{n}"] = out[f"redis{n}"] + out[f"sink{n}"]
        out[f"stats{n}"] = stats[n]
    # Each round's own two/one (its two runs back to back): how much the medians hide.
    out["per_round"] = [a / b for a, b in zip(wall[1, rows], wall[2, rows], strict=True)]
    return out


def report(r: dict[str, Any]) -> None:
    print(describe())
    print(
        f"example job, RSA-2048, {r['rows']} rows, smtp-sink on loopback, private redis-server"
        f" (AOF everysec); median of {r['rounds']} rounds, one and two workers alternating;"
        f" load average (1 min) at start and after each round: "
        + ", ".join(f"{x:.1f}" for x in r["load"])
    )
    for n in (1, 2):
        print(
            f"  {n} worker{'s' if n > 1 else ' '}  {r[f'rate{n}']:6.0f} msg/s"
            f"  (fixed cost {r[f'fixed{n}']:.2f} s, {r[f'fixed_cpu{n}']:.2f} s CPU;"
            f" past it {r[f'steady{n}']:6.0f} msg/s, {r[f'msg_cpu{n}'] * 1e6:4.0f} us CPU/msg)"
            f"  {r[f'cpu{n}'] * 1e6:4.0f} us worker CPU/msg"
            f"  {r[f'redis{n}'] * 1e6:4.1f} us redis-server + {r[f'sink{n}'] * 1e6:4.1f} us"
            f" smtp-sink CPU/msg"
            f"  {r[f'cmds{n}']:5.3f} Redis requests/msg"
        )
    for n in (1, 2):
        # Script commands count twice: as EVALSHA and as the commands it ran.
        top = sorted(r[f"stats{n}"].items(), key=lambda kv: -kv[1]["usec"])[:8]
        print(
            f"  INFO commandstats, {n} worker{'s' if n > 1 else ''}, last round, a message:"
            + ",".join(
                f" {k.removeprefix('cmdstat_')} {v['calls'] / r['rows']:.3f} calls"
                f" {v['usec'] / r['rows']:.1f} us"
                for k, v in top
            )
        )
    print(
        f"  two workers / one: {r['rate2'] / r['rate1']:.2f}x"
        f" (past the fixed cost {r['steady2'] / r['steady1']:.2f}x);"
        f" each round: " + ", ".join(f"{x:.2f}x" for x in r["per_round"])
    )
    # At best one worker has a core to itself (the peers on the other), and two
    # share both cores with redis-server and smtp-sink: the ratio cannot pass this.
    ceiling = 2 * r["msg_cpu1"] / (r["msg_cpu2"] + r["peers2"])
    print(f"  ceiling here (2 cores / all CPU a message, vs one worker's core): {ceiling:.2f}x")


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
