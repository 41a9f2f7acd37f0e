"""The `mailsflux` process leaves what it imported to the OS as it exits
(its collector frozen after the command, so the interpreter's teardown does
not walk and free every module: 45 ms of CPU after a send), with nothing
the command wrote lost and every atexit handler run."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from mailsflux.cli import main
from tests._jobs import make_job, people

# `python -m mailsflux` under a watcher: an atexit handler, registered before
# the command runs, reports whether the collector was frozen when it ran.
_WATCHED = (
    "import atexit, gc, runpy, sys\n"
    "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count(), file=sys.stderr))\n"
    "runpy.run_module('mailsflux', run_name='__main__', alter_sys=True)\n"
)


def _frozen_at_exit(stderr: str) -> int:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("frozen at exit:")]
    assert len(lines) == 1, stderr[-2000:]
    return int(lines[0].rsplit(":", 1)[1])


def test_a_send_exits_frozen_with_its_output_whole(tmp_path: Path) -> None:
    n = 40
    job = make_job(tmp_path, people(n))
    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", _WATCHED, "send", str(job), "--local-sink", "--json", "-q",
         "--workers", "2", "--events", str(events), "--events-plain"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _frozen_at_exit(proc.stderr) > 1000  # the imported modules' objects
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["sent"] == n
    lines = events.read_text().splitlines()
    assert len(lines) == n, lines[-3:]
    assert {json.loads(ln)["type"] for ln in lines} == {"delivered"}


def test_a_failing_command_exits_frozen_with_its_error_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _WATCHED, "send", str(tmp_path / "missing.toml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "missing.toml" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _frozen_at_exit(proc.stderr) > 0


def test_main_called_by_a_program_leaves_its_collector_alone(tmp_path: Path) -> None:
    job = make_job(tmp_path, people(2))
    before = gc.get_freeze_count()
    assert main(["validate", str(job)]) == 0
    assert gc.get_freeze_count() == before


def test_the_console_script_is_the_exiting_entry() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "mailsflux"]
    assert ep.value == "mailsflux.cli:run"
