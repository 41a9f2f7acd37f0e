"""``mailsflux bench e2e``: a whole job through ``mailsflux send`` into a sink.

The same path a user's job takes (``python -m mailsflux send JOB --workers 0``:
every core), timed from outside. CPU time is that of the send process and
its workers (``RUSAGE_CHILDREN`` of this process, taken around the run; the
sink is not reaped until afterwards, so its CPU is not counted). Next to
it, measured in the same run: the floor, a bare sign of the job's own
first message as the send composes and signs it (tracked or not, its
DKIM-Signature field included, a few hundred bytes that a bare sign of
the unsigned message would not hash).
With ``--rounds N`` the job runs N times, each followed by its floor, and
the medians are reported with each round's numbers: on a shared machine one
run can be off by a tenth.

Each round also sends the same job with one row: its CPU is the job's
start-up (imports, keys, the workers, the spool, connecting and ending)
and one message. The CPU a message *after* start-up is the rest of the
job's CPU over its other N - 1 messages: what one more message costs,
which a short job's CPU per message hides under its start.

The CPU a message is also split into the processes' own (user) time and
the kernel's (system) time: the kernel's part holds the socket writes,
and on loopback these also run the sink's side of TCP, which a remote
receiver would run on its own machine; no change to the engine's Python
or compiled code moves it, so it is shown apart.

The second floor, each round: the SMTP exchange alone. A client in C
(:func:`~mailsflux.benchmark.floors.exchange_floor`) sends one of the
job's own messages, as composed and signed, into a sink of the same kind
over the same number of connections, doing nothing else: what delivering
a message costs this machine and this sink whoever sends it. What a
message costs beyond the sign and the exchange is the engine's own work.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux.benchmark.floors import exchange_floor, floor, sign_floor
from mailsflux.benchmark.profile import by_part, check, dso_shares, record_command
from mailsflux.benchmark.result import BenchError, new_result
from mailsflux.benchmark.sample import write_job
from mailsflux.benchmark.sinks import sink
from mailsflux.jobs import Prepared
from mailsflux.types import RenderedMessage

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
#: Messages the exchange floor sends a round, whatever the job's size: at
#: least enough for a steady figure, at most what it needs (into the
#: built-in sink, without PIPELINING, it is slow).
EXCHANGE_MIN, EXCHANGE_MAX = 2_000, 20_000


def _children_cpu() -> tuple[float, float]:
    """User and system seconds of the reaped children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def _send_once(
    job: Path, workers: int, port: int, wrap: list[str] | None = None
) -> tuple[dict[str, Any], float, tuple[float, float]]:
    """One ``mailsflux send`` of ``job``: its JSON summary, wall seconds and
    CPU seconds (user, system). ``wrap``: a command to run it under."""
    cmd = [*(wrap or []), sys.executable, "-m", "mailsflux", "send", str(job), "--json", "-q"]
    cmd += ["--workers", str(workers), "--relay", f"smtp+plain://127.0.0.1:{port}"]
    user0, sys0 = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    user1, sys1 = _children_cpu()
    cpu = (user1 - user0, sys1 - sys0)
    lines = out.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        err = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"mailsflux send failed (status {out.returncode}): {err}") from None
    return summary, elapsed, cpu


def _send_copy(
    job: Path, where: Path, workers: int, port: int, wrap: list[str] | None = None
) -> tuple[dict[str, Any], float, tuple[float, float]]:
    """:func:`_send_once` of a fresh copy of ``job``'s folder at ``where``
    (its own empty spool), removed after."""
    copy = where / job.name
    shutil.copytree(job.parent, where)
    try:
        return _send_once(copy, workers, port, wrap)
    finally:
        shutil.rmtree(where)


def _first_message(job: Path) -> RenderedMessage:
    """The job's first message, composed and signed as the send composes it."""
    prepared = Prepared.load(job)
    try:
        for msg in prepared.messages(lambda p: None):
            return msg
    finally:
        prepared.close()
    raise BenchError(f"{job}: the job composed no message")


def _profiled(
    job: Path, tmp: Path, workers: int, port: int, messages: int, short: list[str]
) -> dict[str, float]:
    """One more send of ``job`` under ``perf record``: its samples' shares by part."""
    data = tmp / "perf.data"
    try:
        summary, _, _ = _send_copy(job, tmp / "profiled", workers, port, record_command(data))
    except BenchError as exc:
        raise BenchError(f"the profiled send (under perf record): {exc.message}") from None
    sent = int(summary.get("sent", 0))
    if sent != messages:
        short.append(f"the profiled send: {sent} of {messages} messages sent: {summary}")
    return by_part(dso_shares(data))


def run_e2e(
    messages: int,
    *,
    algorithm: str = "rsa-sha256",
    workers: int = 0,
    connections: int = 8,
    sink_kind: str = "auto",
    rounds: int = 1,
    tracking: bool = True,
    profile: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """``rounds`` sends of the same job, each from the same start (a fresh
    copy of the job and its own empty spool), each followed by the floor;
    the metrics are the medians, and each round is kept under ``rounds``.

    ``tracking=False`` sends the job without link tracking, open pixel and
    one-click unsubscribe token: what an MTA that does not track sends, to
    compare like with like (and to see what tracking costs a message).

    ``profile``: one more send of the job under ``perf record``, after the
    rounds: the CPU split by the part of the stack that spent it
    (:mod:`mailsflux.benchmark.profile`)."""
    if messages < 1:
        raise BenchError("--messages must be at least 1")
    if rounds < 1:
        raise BenchError("--rounds must be at least 1")
    if connections < 1:
        raise BenchError("--connections must be at least 1")
    if algorithm not in ALGORITHMS:
        raise BenchError(f"--algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    own = sign_floor(algorithm)
    each: list[dict[str, Any]] = []
    parts: dict[str, float] | None = None
    short: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mf-bench-e2e-") as tmp:
        if profile:
            check(Path(tmp))  # perf that cannot: said before the rounds, not after them
        # The spool is on, as in a user's job, but the job's own: results of
        # fake recipients never land in the user's spool, and every round
        # starts from an empty one.
        # The job, and the same job with one row (its start-up).
        made, one = (
            write_job(
                Path(tmp) / name, rows, algorithm=algorithm, connections=connections,
                spool="spool", tracking=tracking,
            )
            for name, rows in (("job", messages), ("one", 1))
        )  # fmt: skip
        # Keys and tracking secrets are made on first use: before the clock.
        # Composing the job's first message (both floors') loads it.
        Prepared.load(one).close()
        first = _first_message(made)
        exchanged = min(max(messages, EXCHANGE_MIN), EXCHANGE_MAX)
        # As many connections as the job's sessions can have open at once.
        conns = min(connections, messages)
        # The exchange floor has a sink of its own, so the job's sink counts
        # only the job's messages.
        with sink(sink_kind) as server, sink(sink_kind) as floor_server:
            for i in range(rounds):
                round_dir, start_dir = Path(tmp) / f"round-{i + 1}", Path(tmp) / f"start-{i + 1}"
                summary, elapsed, (user, system) = _send_copy(made, round_dir, workers, server.port)
                one_summary, _, start_split = _send_copy(one, start_dir, workers, server.port)
                cpu, start_cpu = user + system, sum(start_split)
                if int(one_summary.get("sent", 0)) != 1:
                    short.append(f"round {i + 1}: the one-row send sent no message: {one_summary}")
                # Both floors take the message the job sends, not a sample of
                # another size (the tracked one is half as long again).
                f = floor(first.data)
                x = exchange_floor(
                    floor_server.port, first.mail_from, first.rcpt_to, first.data,
                    count=exchanged, connections=conns,
                )  # fmt: skip
                sent = int(summary.get("sent", 0))
                if sent != messages:
                    short.append(f"round {i + 1}: {sent} of {messages} messages sent: {summary}")
                scale = 1e6 / max(sent, 1)  # seconds of the job to us a message
                per_msg = cpu * scale
                # The one-row send is start-up and one message: the job's
                # other messages are what its CPU has beyond it.
                after = (cpu - start_cpu) / (sent - 1) * 1e6 if sent > 1 else 0.0
                each.append(
                    {
                        "sent": sent,
                        "elapsed_s": round(elapsed, 3),
                        "throughput_msg_s": round(sent / elapsed, 1),
                        "cpu_us_per_msg": round(per_msg, 1),
                        "user_us_per_msg": round(user * scale, 1),
                        "system_us_per_msg": round(system * scale, 1),
                        "floor_us": {k: round(v, 2) for k, v in f.items()},
                        "over_floor_x": round(per_msg / f[own], 2),
                        "beyond_floor_us_per_msg": round(per_msg - f[own], 1),
                        "startup_cpu_ms": round(start_cpu * 1e3, 3),
                        "after_startup_us_per_msg": round(after, 1),
                        "after_startup_beyond_floor_us": round(after - f[own], 1),
                        "exchange_us_per_msg": round(x["exchange_us"], 1),
                        "exchange_system_us_per_msg": round(x["exchange_system_us"], 1),
                        "exchange_msg_s": round(x["exchange_msg_s"], 1),
                        "beyond_floors_us_per_msg": round(per_msg - f[own] - x["exchange_us"], 1),
                        "after_startup_beyond_floors_us": round(
                            after - f[own] - x["exchange_us"], 1
                        ),
                    }
                )
                if progress is not None:
                    progress((i + 1) * messages)
            if profile:
                # Into the floor's sink: the job's sink counts the rounds only.
                parts = _profiled(made, Path(tmp), workers, floor_server.port, messages, short)
    result = new_result(
        "e2e",
        {
            "messages": messages,
            "algorithm": algorithm,
            "workers": workers or "all cores",
            "connections": connections,
            "sink": server.kind,
            "tracking": tracking,
            "spool": "on (the job's own)",
            "rounds": rounds,
        },
    )

    def mid(key: str) -> float:
        return round(float(statistics.median(r[key] for r in each)), 3)

    def across(key: str) -> Any:
        """A round metric over every round: the median (the least messages sent)."""
        if key == "sent":
            return min(r["sent"] for r in each)
        if key == "floor_us":
            return {
                k: round(statistics.median(r["floor_us"][k] for r in each), 2)
                for k in each[0]["floor_us"]
            }
        return mid(key)

    # Every round metric, in the rounds' own order: a new one needs no line here.
    result["metrics"] = {key: across(key) for key in each[0]}
    result["metrics"].update(
        exchange_connections=conns,
        exchange_sized=x["exchange_sized"],
        message_bytes=len(first.data),
    )
    if rounds > 1:
        for key in (
            "cpu_us_per_msg", "over_floor_x", "beyond_floor_us_per_msg", "beyond_floors_us_per_msg"
        ):  # fmt: skip
            result["metrics"][f"{key}_min"] = min(r[key] for r in each)
            result["metrics"][f"{key}_max"] = max(r[key] for r in each)
    result["rounds"] = each
    if parts is not None:
        # Shares of one profiled send, costed at the rounds' median CPU.
        cpu = result["metrics"]["cpu_us_per_msg"]
        result["metrics"]["profile_share"] = {k: round(v, 4) for k, v in parts.items()}
        result["metrics"]["profile_us_per_msg"] = {k: round(v * cpu, 1) for k, v in parts.items()}
        result["notes"].append(
            "where the CPU goes: the shares of perf's samples (every process of one more send"
            " of the job, in them and in the kernel) times the rounds' median CPU a message"
        )
    if server.tally:
        result["metrics"]["sink_messages"] = server.tally.get("messages", 0)
        result["metrics"]["sink_octets"] = server.tally.get("octets", 0)
    result["notes"].extend(short)
    if rounds > 1:
        result["notes"].append(
            f"median of {rounds} rounds (each with its own floor); min and max as *_min, *_max"
        )
    result["notes"].append("wall time includes starting the processes")
    result["notes"].append(
        f"the exchange floor: {exchanged} of the job's first message ({len(first.data)} bytes)"
        f" over {conns} connection{'s' if conns > 1 else ''} into a second {server.kind},"
        f" {'with' if x['exchange_pipelining'] else 'without'} PIPELINING"
        f"{', MAIL FROM with SIZE=' if x['exchange_sized'] else ''}, by a client in C"
        " that does nothing else; connecting and EHLO left out"
    )
    result["notes"].append(
        "start-up: the CPU of a one-row send of the same job, each round;"
        " after start-up: the rest of the job's CPU over its other messages"
    )
    return result
