"""A ``mailsflux worker`` skips the suppressed rows of a job in Redis, in their places (issue 17).

The submitter puts every good row in the job's stream; the worker asks the
job's suppression list about each entry's rows just before composing them
(an entry at a time, ``rows.composed``). A job of two entries whose list
file names rows in another case, among bad rows: the suppressed rows are
never sent and are counted suppressed, every other row is delivered once,
and the worker reports each suppressed row by its line, in order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mailsflux.jobs.worker import BATCH
from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._workers import Workers

pytestmark = pytest.mark.redis

ROWS = 120
# A job this small goes into the stream in entries of BATCH (64) good rows;
# the bad row (index 50) is not among them, so the first entry ends at index
# 64. Suppressed: the first row, both sides of that edge, and the last.
SUPPRESSED = (0, BATCH, BATCH + 1, 77, 119)


def test_a_worker_skips_suppressed_rows_and_sends_the_rest_once(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    rows = people(ROWS)
    rows[50] = ["not-an-address", "X", "Y", "Pro"]
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256")
        (job.parent / "suppressed.txt").write_text(
            "".join(f"{rows[i][0].upper()}\n" for i in SUPPRESSED)
        )
        job.write_text(
            job.read_text().replace(
                'file = "recipients.csv"\n',
                'file = "recipients.csv"\nsuppression = "suppressed.txt"\n',
            )
        )
        with Workers(1, redis_url, prefix, tmp_path) as workers:
            sent = run_cli("send", str(job), "--redis", redis_url, "--prefix", prefix, "--json")
            status = run_cli("status", "job", "--json", "--redis", redis_url, "--prefix", prefix)
        log = workers.log(0)
    assert sent.returncode == 0, sent.stderr + log
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)["counts"]
    assert counts == {"delivered": ROWS - 1 - len(SUPPRESSED), "suppressed": 5, "skipped": 1}
    got = Counter(r for m in handler.received for r in m.rcpt_tos)
    want = {r[0] for i, r in enumerate(rows) if i != 50 and i not in SUPPRESSED}
    assert got == Counter(dict.fromkeys(want, 1))
    # Each by its line, in order (the address masked in the log).
    csv = job.parent / "recipients.csv"
    lines = [ln for ln in log.splitlines() if ln.endswith(": suppressed; row skipped")]
    assert [ln.split(": ")[0] for ln in lines] == [f"{csv}:{i + 2}" for i in SUPPRESSED], log
