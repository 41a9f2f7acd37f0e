"""A relay answering 421 at connect is busy, not wrong (RFC 5321 3.8, 4.2.1:
4yz is temporary): the job goes on and its messages are deferred after their
attempts (exit 1), rather than the whole job failing (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP


def test_421_at_greeting_defers_the_messages(tmp_path: Path) -> None:
    with ScriptedSMTP(greeting="421 4.3.2 mx.test busy, try again later") as server:
        job = make_job(tmp_path, people(3), relay=f"smtp+plain://127.0.0.1:{server.port}")
        r = run_cli("send", str(job), "-q", "--json")
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert (summary["sent"], summary["deferred"], summary["failed"]) == (0, 3, 0)
    assert "421" in r.stderr and "retried" in r.stderr
    # The probe, then each message's attempts (3, in make_job): all met the 421.
    assert server.sessions >= 4 and server.lines == []


def test_a_relay_that_refuses_connections_is_still_a_job_error(tmp_path: Path) -> None:
    with ScriptedSMTP() as server:
        port = server.port
    job = make_job(tmp_path, people(1), relay=f"smtp+plain://127.0.0.1:{port}")
    r = run_cli("send", str(job), "-q")
    assert r.returncode == 2
    assert f"cannot reach relay 127.0.0.1:{port}" in r.stderr
