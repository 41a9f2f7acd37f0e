"""``mailsflux serve`` keeps running the queue: a message deferred by a job
is delivered by it once it comes due, exactly once; SIGTERM stops it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def test_serve_delivers_deferred_mail_when_it_comes_due(tmp_path: Path) -> None:
    refusing = True

    def reply(address: str, n: int) -> str | None:
        return "451 4.3.0 mailbox busy" if refusing else None

    handler = RecordingHandler(reply)
    rows = people(12)
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url, algorithm="ed25519-sha256", attempts=1)
        job.write_text(job.read_text() + "queue_initial = 0.5\n")
        sent = run_cli("send", str(job), "-q")
        assert sent.returncode == 1 and "12 deferred in the spool" in sent.stdout
        refusing = False
        cmd = [sys.executable, "-m", "mailsflux", "serve", "--interval", "0.2"]
        serve = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(handler.received) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a few more passes: nothing more may go out
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    # One pass or several, as the messages come due: 12 delivered in all, nothing else.
    passes = re.findall(r"(\d+) tried: (\d+) delivered, 0 deferred, 0 failed", out)
    assert passes and all(a == b for a, b in passes), out
    assert sum(int(b) for _, b in passes) == 12, out
    got = sorted(r for m in handler.received for r in m.rcpt_tos)
    assert got == sorted(r[0] for r in rows)
    status = json.loads(run_cli("status", "job", "--json").stdout)
    assert status["counts"] == {"delivered": 12}
