"""``mailsflux send JOB --redis URL`` with ``mailsflux worker`` processes, a real Redis and
a real SMTP server: everyone delivered once, status read from Redis, deferred
messages retried by whichever worker is free."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 300


def _status(redis_url: str, prefix: str) -> dict[str, object]:
    got = run_cli("status", "job", "--json", "--redis", redis_url, "--prefix", prefix)
    assert got.returncode == 0, got.stderr
    doc: dict[str, object] = json.loads(got.stdout)
    return doc


def test_two_workers_send_a_job_once_and_status_reads_it_from_redis(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    rows = people(ROWS)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        events = tmp_path / "events.jsonl"
        with Workers(2, redis_url, prefix, tmp_path, "--events", str(events)) as workers:
            sent = run_cli("send", str(job), "--redis", redis_url, "--prefix", prefix, "--json")
            status = _status(redis_url, prefix)
        logs = workers.log(0) + workers.log(1)
    assert sent.returncode == 0, sent.stderr + logs
    summary = json.loads(sent.stdout)
    assert summary["sent"] == ROWS and not summary["interrupted"]
    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert got == Counter({r[0]: 1 for r in rows})
    assert status["counts"] == {"delivered": ROWS}
    assert status["state"] == "finished" and status["rows"] == ROWS
    # Both workers wrote their events into one file, a whole line each.
    kinds = Counter(json.loads(line)["type"] for line in events.read_text().splitlines())
    assert kinds == {"delivered": ROWS}


def test_a_bad_row_is_recorded_skipped_by_the_sender(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    handler = RecordingHandler()
    rows = [*people(5), ["not-an-address", "X", "Y", "Pro"]]
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        with Workers(1, redis_url, prefix, tmp_path):
            sent = run_cli("send", str(job), "--redis", redis_url, "--prefix", prefix, "-q")
            status = _status(redis_url, prefix)
    assert sent.returncode == 0, sent.stderr
    assert "recipients.csv:7" in sent.stderr  # the bad row named, once
    assert status["counts"] == {"delivered": 5, "skipped": 1}


def test_deferred_messages_are_retried_by_a_worker_when_due(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    # Every fourth recipient is greylisted on its first try.
    def reply(address: str, n: int) -> str | None:
        return "451 4.7.1 greylisted, try later" if n == 1 and address[4] in "048" else None

    handler = RecordingHandler(reply)
    rows = people(40)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", attempts=1)
        with job.open("a") as fh:
            fh.write("queue_initial = 0.3\nqueue_max = 0.3\n")
        with Workers(2, redis_url, prefix, tmp_path):
            sent = run_cli("send", str(job), "--redis", redis_url, "--prefix", prefix, "--json")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = _status(redis_url, prefix)
                if status["counts"] == {"delivered": 40}:
                    break
                time.sleep(0.3)
    summary = json.loads(sent.stdout)
    assert summary["deferred"] > 0 and sent.returncode == 1  # deferred when every row had a state
    assert status["counts"] == {"delivered": 40}
    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    assert got == Counter({r[0]: 1 for r in rows})


def test_stopped_workers_leave_the_consumer_group(redis_url: str, prefix: str) -> None:
    from mailsflux.jobs.worker import GROUP, forget_gone_consumers
    from mailsflux.spool import SpoolKeys
    from mailsflux.spool.redis_spool import RedisSpool

    with RedisSpool(redis_url, prefix=prefix, keys=SpoolKeys.generate()) as spool:
        q = spool.key("job-1", "q")
        spool.client.xgroup_create(q, GROUP, id="0", mkstream=True)
        spool.client.xadd(q, {"first": 1})
        spool.client.xadd(q, {"first": 2})
        done = spool.client.xreadgroup(GROUP, "gone", {q: ">"}, count=1)[0][1][0][0]
        spool.client.xack(q, GROUP, done)
        spool.client.xreadgroup(GROUP, "holding", {q: ">"}, count=1)
        time.sleep(0.05)
        assert forget_gone_consumers(spool, "job-1", idle=0.01) == 1
        names = [c["name"] for c in spool.client.xinfo_consumers(q, GROUP)]
    assert names in (["holding"], [b"holding"])


def test_send_redis_bad_input_is_one_line(tmp_path: Path, redis_url: str, prefix: str) -> None:
    job = make_job(tmp_path, people(3), algorithm="ed25519-sha256")
    for extra in (["--workers", "2"], ["--local-sink"]):
        got = run_cli("send", str(job), "--redis", redis_url, "--prefix", prefix, *extra)
        assert got.returncode == 2 and "Traceback" not in got.stderr
        assert got.stderr.count("\n") == 1 and "with --redis the workers send" in got.stderr
    got = run_cli("send", str(job), "--redis", "redis://127.0.0.1:1/0")
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert "(Redis)" in got.stderr.splitlines()[-1]
    got = run_cli("worker", "--redis", "http://nowhere")
    assert got.returncode == 2 and "not a Redis URL" in got.stderr and "Traceback" not in got.stderr
