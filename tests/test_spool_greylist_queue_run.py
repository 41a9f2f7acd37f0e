"""A greylisting receiver: the job defers every message into the spool, and
``mailsflux queue run`` delivers each exactly once after the greylist."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def test_greylisted_mail_waits_in_the_spool_and_queue_run_delivers_it_once(
    tmp_path: Path, private_spool: Path
) -> None:
    greylisting = True

    def reply(address: str, n: int) -> str | None:
        return "450 4.7.1 greylisted, try again later" if greylisting else None

    handler = RecordingHandler(reply)
    rows = people(40)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", attempts=1)
        # The spool's schedule, shortened: first retry after 0.3 s.
        job.write_text(job.read_text() + "queue_initial = 0.3\n")
        sent = run_cli("send", str(job), "-q")
        assert sent.returncode == 1, sent.stderr
        assert "deferred  40" in sent.stdout
        assert "40 deferred in the spool" in sent.stdout and "queue run" in sent.stdout
        assert handler.received == []
        # 40 messages wait in the spool, bytes and all: none of it readable.
        stored = b"".join(f.read_bytes() for f in private_spool.rglob("*") if f.is_file())
        assert len(stored) > 40 * 1000
        for email, *_ in rows:
            assert email.encode() not in stored and email.split("@")[0].encode() not in stored
        assert b"Your plan" not in stored and b"Hello Name" not in stored

        listed = run_cli("queue", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (entry,) = json.loads(listed.stdout)
        assert entry["waiting"] == 40 and entry["name"] == "job"

        status = run_cli("status", "job", "--json")
        doc = json.loads(status.stdout)
        assert doc["state"] == "finished" and doc["counts"] == {"deferred": 40}
        assert doc["per_domain"] == {
            "example.com": {"deferred": 20},
            "example.org": {"deferred": 20},
        }

        greylisting = False
        time.sleep(0.7)  # past the first retry (0.3 s +- 10 %)
        ran = run_cli("queue", "run")
        assert ran.returncode == 0, ran.stderr
        assert "40 tried: 40 delivered" in ran.stdout

        again = run_cli("queue", "run")
        assert again.returncode == 0 and "nothing was due" in again.stdout

        resent = run_cli("send", str(job), "-q")
        assert resent.returncode == 0, resent.stderr
        assert "resumed: 40 rows settled by an earlier run" in resent.stdout

    got = sorted(r for m in handler.received for r in m.rcpt_tos)
    assert got == sorted(r[0] for r in rows)  # each exactly once
    assert all(n == 2 for n in handler.attempts.values())  # refused once, then accepted
    final = json.loads(run_cli("status", "job", "--json").stdout)
    assert final["counts"] == {"delivered": 40}
