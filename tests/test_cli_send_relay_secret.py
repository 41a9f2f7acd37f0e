"""A relay password stays out of every process's argv (which `ps` shows to
every user): MAILSFLUX_RELAY carries it, and worker processes get the relay
through their environment (spawned) or their parent's memory (forked), never
a command line of their own. A relay that would send it in clear text over a
network draws a warning."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from mailsflux._fork import START_ENV
from tests._jobs import make_job, people
from tests._procs import send_watched
from tests._scripted_smtp import ScriptedSMTP

USER, PASSWORD = "mailer", "s3cr3t-Pa55"


def _send(
    job: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[int, bytes], bytes]:
    return send_watched(job, *args, env=env)


def _auth_passwords(server: ScriptedSMTP) -> set[str]:
    return {
        base64.b64decode(line.split()[2]).split(b"\0")[2].decode()
        for line in server.lines
        if line.startswith("AUTH PLAIN ")
    }


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_get_the_relay_password_outside_argv(tmp_path: Path, start: str) -> None:
    job = make_job(tmp_path, people(6))
    # Each message waits at the final dot, so the workers live to be looked at.
    with ScriptedSMTP(auth=True, end_of_data_delay=0.3) as server:
        url = f"smtp+plain://{USER}:{PASSWORD}@127.0.0.1:{server.port}"
        r, children, own = _send(job, "--relay", url, "--workers", "2", env={START_ENV: start})
    assert r.returncode == 0, r.stderr
    if start == "fork":
        # A forked worker's argv is its parent's, which the user wrote (the
        # option's help says `ps` shows it): none of its own, nothing added.
        assert len(children) == 2 and all(cmd == own for cmd in children.values()), children
    else:
        workers = {pid: cmd for pid, cmd in children.items() if b"--shard" in cmd}
        assert len(workers) == 2, children
        for cmd in workers.values():
            assert PASSWORD.encode() not in cmd and USER.encode() not in cmd, cmd
            assert b"--relay" not in cmd
    assert _auth_passwords(server) == {PASSWORD}  # the workers had it all the same
    assert len(server.bodies) == 6
    assert "clear text" not in r.stderr  # loopback: no warning


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_mailsflux_relay_keeps_the_password_out_of_argv(tmp_path: Path, start: str) -> None:
    job = make_job(tmp_path, people(4))
    with ScriptedSMTP(auth=True, end_of_data_delay=0.3) as server:
        url = f"smtp+plain://{USER}:{PASSWORD}@127.0.0.1:{server.port}"
        r, children, own = _send(
            job, "--workers", "2", env={"MAILSFLUX_RELAY": url, START_ENV: start}
        )
    assert r.returncode == 0, r.stderr
    assert PASSWORD.encode() not in own
    assert children and all(PASSWORD.encode() not in cmd for cmd in children.values())
    assert _auth_passwords(server) == {PASSWORD} and len(server.bodies) == 4


def test_a_bad_mailsflux_relay_is_one_line_without_the_password(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    r, _, _ = _send(job, env={"MAILSFLUX_RELAY": f"smtp:{USER}:{PASSWORD}@127.0.0.1"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "mailsflux: error: MAILSFLUX_RELAY: relay 'smtp:***@127.0.0.1': expected"
        " smtp://host[:port], smtp+plain://... or smtps://..."
    ]


def test_clear_text_credentials_to_a_network_host_draw_a_warning(tmp_path: Path) -> None:
    # Nothing is sent anywhere: validate never connects, and send stops at the
    # missing CA file, after the warning, before any connection.
    relay = f"smtp+plain://{USER}:{PASSWORD}@relay.example.com:587"
    job = make_job(tmp_path, people(2), relay=relay)
    job.write_text(job.read_text() + 'tls_ca = "missing-ca.pem"\n')
    v = subprocess.run(
        [sys.executable, "-m", "mailsflux", "validate", str(job)], capture_output=True, text=True
    )
    r, _, _ = _send(job)
    assert r.returncode == 2 and "tls_ca" in r.stderr, r.stderr
    for err in (v.stderr, r.stderr):
        warned = [line for line in err.splitlines() if "clear text" in line]
        assert len(warned) == 1, err
        assert "warning" in warned[0] and "relay.example.com" in warned[0]
        assert PASSWORD not in err
