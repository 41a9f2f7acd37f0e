"""A real Postfix sends its own DSN to a job's VERP return path, and the bounce
listener inside ``mailsflux serve`` turns it into a bounce event and a
suppression entry.

Everything runs in a private network and mount namespace (``unshare --net
--mount``, root only, as the OpenDKIM test does): loopback only, so Postfix's
port 25 and the listener's 2525 touch nothing outside. Postfix accepts mail
for example.com, has no local users, so local delivery fails after the
message was accepted and Postfix's bounce daemon writes an RFC 3464 report
to the envelope sender; its transport map sends mail for the bounce domain
to the listener. Skipped, with the reason, without Postfix or namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests._bounces import write_tracking_config
from tests._cli import run_cli
from tests._events import read_events
from tests._jobs import make_job

DATA = Path(__file__).parent / "data" / "postfix"
BOUNCE = "bounce.sender.example"

CHILD = r"""
import json, os, signal, subprocess, sys, time
spec = json.load(open(sys.argv[1]))
D = spec["instance"]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
env = dict(os.environ)
serve = subprocess.Popen([sys.executable, "-m", "mailsflux", "serve", "--config", spec["serve"]],
                         stderr=subprocess.PIPE, text=True)
out = {}
try:
    pf = subprocess.run(["postfix", "-c", D + "/conf", "start"], capture_output=True, text=True)
    out["postfix_start"] = pf.returncode
    time.sleep(1.0)
    sent = subprocess.run([sys.executable, "-m", "mailsflux", "send", spec["job"], "-q", "--json"],
                          capture_output=True, text=True, timeout=120)
    out["send"] = sent.returncode
    out["send_out"] = sent.stdout[-2000:] + sent.stderr[-2000:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(spec["events"]) and "bounced" in open(spec["events"]).read():
            break
        time.sleep(0.2)
finally:
    subprocess.run(["postfix", "-c", D + "/conf", "stop"], capture_output=True)
    serve.send_signal(signal.SIGTERM)
    try:
        _, err = serve.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        serve.kill()
        _, err = serve.communicate()
    out["serve_rc"] = serve.returncode
    out["serve_err"] = err[-3000:]
    try:
        out["maillog"] = open(D + "/maillog").read()[-4000:]
    except OSError:
        out["maillog"] = ""
print(json.dumps(out))
"""


def _skip_reasons() -> str | None:
    if os.geteuid() != 0:
        return "needs root for unshare --net --mount (a private Postfix)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    if shutil.which("postfix") is None or not Path("/usr/lib/postfix/sbin/master").exists():
        return "Postfix is not installed (./scripts/test.sh installs it)"
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare --net --mount not permitted here: {probe.stderr.decode().strip()}"
    return None


def test_postfix_dsn_becomes_a_bounce_and_a_suppression(tmp_path: Path) -> None:
    why = _skip_reasons()
    if why is not None:
        pytest.skip(why)
    # Postfix's daemons run as the postfix user: its queue cannot sit under
    # pytest's 0700 tmp_path.
    inst = Path(tempfile.mkdtemp(prefix="mf-postfix-"))
    try:
        inst.chmod(0o755)
        for d in ("conf", "queue", "data"):
            (inst / d).mkdir()
        shutil.chown(inst / "data", "postfix")
        main_cf = (DATA / "main.cf.in").read_text().replace("@D@", str(inst))
        (inst / "conf" / "main.cf").write_text(main_cf.replace("@BOUNCE@", BOUNCE))
        shutil.copy(DATA / "master.cf", inst / "conf" / "master.cf")

        job = make_job(tmp_path, [["nosuchuser@example.com", "N", "No", "Pro"]],
                       relay="smtp+plain://127.0.0.1:25", attempts=1)  # fmt: skip
        cfg = write_tracking_config(job.parent / "tracking.toml")
        job.write_text(
            job.read_text()
            + f'\n[tracking]\nconfig = "tracking.toml"\nbounce_domain = "{BOUNCE}"\n'
        )
        events = tmp_path / "bounce-events.jsonl"
        serve_cfg = tmp_path / "server.toml"
        serve_cfg.write_text(
            f'data_dir = "data"\n[[dkim]]\ndomain = "sender.example"\nselector = "s"\n'
            f'key = "dkim.pem"\ngenerate = true\nalgorithm = "ed25519-sha256"\n'
            f'[bounces]\nlisten = "127.0.0.1:2525"\ntracking = "{cfg}"\n'
            f'bounce_domain = "{BOUNCE}"\nevents = "{events}"\nquarantine = "q"\n'
        )
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"instance": str(inst), "serve": str(serve_cfg),
                                    "job": str(job), "events": str(events)}))  # fmt: skip
        child = tmp_path / "child.py"
        child.write_text(CHILD)
        proc = subprocess.run(
            ["unshare", "--net", "--mount", sys.executable, str(child), str(spec)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(inst, ignore_errors=True)

    assert out["postfix_start"] == 0, out["maillog"]
    # Postfix took the message (250), then failed to deliver it locally.
    assert out["send"] == 0, out["send_out"]
    assert "status=bounced" in out["maillog"] and "sender non-delivery notification" in out[
        "maillog"], out["maillog"]  # fmt: skip
    assert out["serve_rc"] == 143, out["serve_err"]
    (event,) = read_events(events, tmp_path / "data" / "events.keys")
    assert event["type"] == "bounced" and event["recipient"] == "nosuchuser@example.com"
    assert event["details"]["enhanced_status"] == "5.1.1" and event["job"] == "job"
    check = run_cli("suppression", "check", "nosuchuser@example.com", "--tracking", str(cfg))
    assert check.returncode == 1 and "hard-bounce" in check.stdout, check.stdout
