"""What the spool refuses: a second run of a running job, a --restart that
would forget deferred mail, and a spool whose key file has gone missing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailsflux.errors import SpoolError
from mailsflux.spool import JobInfo, Record, SQLiteSpool
from mailsflux.types import RenderedMessage
from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._scripted_smtp import ScriptedSMTP


def test_a_second_run_of_a_running_job_is_refused(tmp_path: Path) -> None:
    with ScriptedSMTP(end_of_data_delay=0.05) as srv:
        job = make_job(tmp_path, people(60), relay=f"smtp+plain://127.0.0.1:{srv.port}")
        cmd = [sys.executable, "-m", "mailsflux", "send", str(job), "-q"]
        first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not srv.bodies and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        second = run_cli("send", str(job), "-q")
        first.wait(120)
        bodies = len(srv.bodies)
    assert second.returncode == 2, second.stderr
    # One line for the refusal (besides the reserved-domain notice of the
    # authentication check, which runs first).
    (line,) = [x for x in second.stderr.strip().splitlines() if ": notice:" not in x]
    assert "is running now" in line and "Traceback" not in second.stderr
    assert first.returncode == 0 and bodies == 60  # the second sent nothing


def test_restart_does_not_forget_deferred_mail(tmp_path: Path) -> None:
    handler = RecordingHandler(lambda address, n: "451 4.3.0 try later")
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, people(3), relay=server.url, attempts=1)
        assert run_cli("send", str(job), "-q").returncode == 1
        again = run_cli("send", str(job), "-q", "--restart")
    assert again.returncode == 2
    assert "3 deferred messages" in again.stderr and "queue drop" in again.stderr


def test_a_missing_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    spool = SQLiteSpool(tmp_path / "s")
    spool.begin_job(JobInfo(id="j", name="j", source="x", fingerprint="f"))
    msg = RenderedMessage(mail_from="a@b.example", rcpt_to="c@d.example", data=b"x", message_id="m")
    spool.store("j", [Record(row=1, state="deferred", message=msg)])
    spool.close()
    (tmp_path / "s" / "keys").unlink()
    with pytest.raises(SpoolError, match="cannot read the spool key file"):
        SQLiteSpool(tmp_path / "s")
    assert not (tmp_path / "s" / "keys").exists()
