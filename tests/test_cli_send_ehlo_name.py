"""The EHLO name is settable ([delivery] ehlo_name, send --ehlo-name) and used
by the relay probe and every session; a name that is not fully qualified
(Postfix's reject_non_fqdn_helo_hostname refuses it) gets one warning."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP

WARNING = "is not a fully qualified domain name"


def job_for(tmp_path: Path, port: int, extra: str = "") -> Path:
    job = make_job(tmp_path, people(4), relay=f"smtp+plain://127.0.0.1:{port}", ehlo_name=None)
    job.write_text(job.read_text() + extra)
    return job


def ehlos(server: ScriptedSMTP) -> list[str]:
    return [line for line in server.lines if line.split(" ")[0].upper() in ("EHLO", "HELO")]


def test_job_file_name_is_said_by_the_probe_and_every_session(tmp_path: Path) -> None:
    with ScriptedSMTP() as server:
        job = job_for(tmp_path, server.port, 'ehlo_name = "mta1.sender.example"\n')
        r = run_cli("send", str(job), "-q", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["sent"] == 4
    assert server.sessions >= 2  # the probe, then at least one sending session
    assert ehlos(server) == ["EHLO mta1.sender.example"] * server.sessions
    assert WARNING not in r.stderr


def test_the_option_overrides_the_job_file(tmp_path: Path) -> None:
    with ScriptedSMTP() as server:
        job = job_for(tmp_path, server.port, 'ehlo_name = "mta1.sender.example"\n')
        r = run_cli("send", str(job), "-q", "--ehlo-name", "[192.0.2.7]")
    assert r.returncode == 0, r.stderr
    assert ehlos(server) == ["EHLO [192.0.2.7]"] * server.sessions
    assert WARNING not in r.stderr  # an address literal is a valid EHLO argument


def test_a_name_without_a_dot_is_warned_about_once(tmp_path: Path) -> None:
    with ScriptedSMTP() as server:
        job = job_for(tmp_path, server.port)
        r = run_cli("send", str(job), "-q", "--ehlo-name", "localhost", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert set(ehlos(server)) == {"EHLO localhost"}
    assert r.stderr.count(WARNING) == 1
    assert "ehlo_name" in r.stderr


def test_a_bad_name_is_refused_naming_the_field(tmp_path: Path) -> None:
    job = job_for(tmp_path, 1, 'ehlo_name = "mta1.sender.example\\r\\nMAIL FROM:<x@y>"\n')
    r = run_cli("send", str(job), "-q")
    assert r.returncode == 2
    assert "job.toml" in r.stderr and "delivery.ehlo_name" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("send", str(job), "-q", "--ehlo-name", "bad name")
    assert r.returncode == 2 and "--ehlo-name" in r.stderr and "Traceback" not in r.stderr
