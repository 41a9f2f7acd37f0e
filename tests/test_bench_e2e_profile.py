"""`bench e2e --profile` splits the job's CPU a message by the part of the
stack that spent it, from Linux perf's samples of one more send of the job:
the sign lands on cryptography, the compiled stages on mailsflux's own
modules, and next to nothing is left unplaced; the chart stacks the job's
bar by part. Without perf it is one line before any round runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailsflux.benchmark.plot import figure, pyplot
from mailsflux.benchmark.profile import PARTS, owners, part_of
from tests._cli import run_cli


def _perf_records(tmp_path: Path) -> bool:
    perf = shutil.which("perf")
    if perf is None:
        return False
    got = subprocess.run(
        [perf, "record", "-q", "-o", str(tmp_path / "probe.data"), "--", "true"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    return got.returncode == 0


def test_profile_splits_the_cpu_by_part(tmp_path: Path) -> None:
    if not _perf_records(tmp_path):
        pytest.skip("Linux perf is not installed or may not record here")
    out = tmp_path / "e2e.json"
    # Enough messages that the signs are a fair share next to start-up.
    proc = run_cli(
        "bench", "e2e", "--messages", "2000", "--workers", "1", "--sink", "builtin",
        "--algorithm", "ed25519-sha256", "--profile", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())["metrics"]
    share, us = m["profile_share"], m["profile_us_per_msg"]
    assert list(share) == list(PARTS) == list(us)
    assert abs(sum(share.values()) - 1) < 0.005, share
    # About 33 us of some 130 a message: placed on cryptography, not lost.
    assert share["sign"] > 0.05, share
    # The compiled stages are found by their modules' file names.
    assert share["core"] > 0.01, share
    assert share["interpreter"] > 0.05 and share["kernel"] > 0.01, share
    assert share["other"] < 0.05, share
    for k, v in share.items():
        assert us[k] == pytest.approx(v * m["cpu_us_per_msg"], abs=0.11), (k, us, share)
    # The job's sink still counts the job and its one-row start-up only.
    assert m["sink_messages"] == 2001
    assert "where the CPU goes" in proc.stdout
    assert f"{PARTS['sign']}" in proc.stdout

    # Drawn: the job's bar stacked by part (a legend entry each), the floors beside it.
    doc = json.loads(out.read_text())
    fig = figure(doc)
    try:
        ax = fig.axes[0]
        job = [p for p in ax.patches if abs(p.get_x() + p.get_width() / 2) < 1e-9]
        drawn = [k for k, v in us.items() if v > 0]
        assert len(job) == len(drawn)
        assert sum(p.get_height() for p in job) == pytest.approx(sum(us.values()), abs=1e-6)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [PARTS[k] for k in drawn]
        assert ax.get_xticklabels()[0].get_text() == "mailsflux send"
    finally:
        pyplot().close(fig)


def test_every_compiled_module_of_the_package_is_the_core() -> None:
    known = owners()
    ours = [
        p.name for p in Path(__import__("mailsflux").__file__).parent.rglob("*.so")
    ]  # the installed package's compiled modules
    assert ours, "mailsflux is installed without its compiled core"
    assert {part_of(name, known) for name in ours} == {"core"}
    assert part_of("libpython3.11.so.1.0", known) == "interpreter"
    assert part_of("libunheard-of.so.1", known) == "other"
    assert part_of("[kernel.kallsyms]", known) == part_of("[vdso]", known) == "kernel"
    assert part_of("[ext4]", known) == part_of("[nf_conntrack]", known) == "kernel"
    assert part_of("[unknown]", known) == "other"
    assert part_of("libc.so.6", known) == part_of("ld-linux-x86-64.so.2", known) == "libc"
    assert part_of("libsqlite3.so.0.8.6", known) == "sqlite"
    assert part_of("libsodium.so.23", known) == part_of("libsodium-1a2b3c4d.so.26", known) == "sign"
    assert part_of("libcrypto.so.3", known) == "openssl"


def test_profile_without_perf_is_one_line(tmp_path: Path) -> None:
    # A PATH with the interpreter's folder only: no perf on it.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "mailsflux", "bench", "e2e", "--messages", "4", "--profile"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: --profile needs Linux perf (Debian: apt install linux-perf);"
        " it is not installed"
    ]


def test_profile_that_cannot_see_the_kernel_is_one_line(tmp_path: Path) -> None:
    # A user other than root, where kernel.perf_event_paranoid keeps users
    # out of the kernel: perf would quietly record the processes alone.
    setpriv = shutil.which("setpriv")
    paranoid = Path("/proc/sys/kernel/perf_event_paranoid")
    if os.geteuid() != 0 or setpriv is None or not paranoid.exists():
        pytest.skip("needs root (to run as nobody) and setpriv")
    if int(paranoid.read_text()) < 2 or not _perf_records(tmp_path):
        pytest.skip("perf lets every user sample the kernel here, or cannot record")
    tmp_path.chmod(0o777)
    nobody = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    if subprocess.run([*nobody, "-c", "import mailsflux"], env=env, cwd=tmp_path).returncode:
        pytest.skip("nobody cannot read this checkout's Python")
    proc = subprocess.run(
        [*nobody, "-m", "mailsflux", "bench", "e2e", "--messages", "4", "--profile"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "mailsflux: error: perf may not sample the kernel here, so its share would go to"
        " the rest: run as root or set kernel.perf_event_paranoid to 1 or lower"
    ]
