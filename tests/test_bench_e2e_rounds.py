"""`bench e2e --rounds N` runs the same job N times from the same start,
each with its own floor, and reports the medians beside every round; the
job keeps its own spool, so nothing of it lands in the user's."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from tests._cli import run_cli


def test_rounds_report_medians_and_leave_the_user_spool_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_spool = tmp_path / "user-spool"
    monkeypatch.setenv("MAILSFLUX_SPOOL", str(user_spool))
    out = tmp_path / "e2e.json"
    proc = run_cli(
        "bench", "e2e", "--messages", "6", "--sink", "builtin", "--workers", "1",
        "--algorithm", "ed25519-sha256", "--rounds", "3", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rounds, m = doc["rounds"], doc["metrics"]
    assert doc["settings"]["rounds"] == 3
    # Every round sent the whole job: a round that found the job already
    # done in a spool would send nothing.
    assert [r["sent"] for r in rounds] == [6, 6, 6]
    # Each round's job, and its one-row send for the start-up.
    assert m["sink_messages"] == 3 * (6 + 1)
    for key in ("cpu_us_per_msg", "over_floor_x", "beyond_floor_us_per_msg"):
        values = [r[key] for r in rounds]
        assert m[key] == pytest.approx(statistics.median(values))
        assert (m[f"{key}_min"], m[f"{key}_max"]) == (min(values), max(values))
    for r in rounds:
        # The processes' own time and the kernel's make the CPU a message.
        assert r["system_us_per_msg"] > 0 and r["user_us_per_msg"] > 0
        split = r["user_us_per_msg"] + r["system_us_per_msg"]
        assert split == pytest.approx(r["cpu_us_per_msg"], abs=0.15)
        # What start-up leaves of the job's CPU, over its messages.
        assert r["startup_cpu_ms"] > 0
        # The one-row send is start-up and one message: the rest is 5 messages.
        after = (r["cpu_us_per_msg"] * 6 - r["startup_cpu_ms"] * 1e3) / 5
        assert r["after_startup_us_per_msg"] == pytest.approx(after, abs=0.3)
        floor = r["floor_us"]["ed25519_sign"]
        assert r["after_startup_beyond_floor_us"] == pytest.approx(after - floor, abs=0.4)
        # Beyond both floors: the sign's and the SMTP exchange's.
        beyond = r["cpu_us_per_msg"] - floor - r["exchange_us_per_msg"]
        assert r["beyond_floors_us_per_msg"] == pytest.approx(beyond, abs=0.2)
        after_both = after - floor - r["exchange_us_per_msg"]
        assert r["after_startup_beyond_floors_us"] == pytest.approx(after_both, abs=0.5)
        assert 0 <= r["exchange_system_us_per_msg"] <= r["exchange_us_per_msg"] + 0.05
    for key in (
        "startup_cpu_ms", "after_startup_us_per_msg", "after_startup_beyond_floor_us",
        "user_us_per_msg", "system_us_per_msg", "exchange_us_per_msg", "exchange_msg_s",
        "beyond_floors_us_per_msg", "after_startup_beyond_floors_us",
    ):  # fmt: skip
        assert m[key] == pytest.approx(statistics.median(r[key] for r in rounds))
    assert f"start-up (a one-row send of the job): {m['startup_cpu_ms']:.1f} ms CPU" in proc.stdout
    assert not any("one-row send sent no message" in n for n in doc["notes"])
    assert (
        f"of the CPU per message: {m['user_us_per_msg']:.1f} us in the processes,"
        f" {m['system_us_per_msg']:.1f} us in the kernel"
    ) in proc.stdout
    ed = [r["floor_us"]["ed25519_sign"] for r in rounds]
    assert m["floor_us"]["ed25519_sign"] == pytest.approx(statistics.median(ed), abs=0.01)
    assert "median of 3 rounds" in proc.stdout
    # A row per round: its number, CPU, floor, ratio, the rest beyond the
    # floor, start-up, after start-up and the kernel's part.
    table = [ln.split() for ln in proc.stdout.splitlines() if re.match(r"[1-3] ", ln)]
    assert [(row[0], row[3]) for row in table] == [
        (str(i), f"{r['over_floor_x']:.2f}x") for i, r in enumerate(rounds, 1)
    ]
    for row, r in zip(table, rounds, strict=True):
        # Printed to 0.1 us, or to the whole us from 1,000 up.
        assert float(row[7].replace(",", "")) == pytest.approx(r["system_us_per_msg"], abs=0.51)
        assert float(row[8].replace(",", "")) == pytest.approx(r["exchange_us_per_msg"], abs=0.51)
        assert float(row[9].replace(",", "")) == pytest.approx(
            r["beyond_floors_us_per_msg"], abs=0.51
        )
    assert (
        f"beyond the sign and the exchange: {m['beyond_floors_us_per_msg']:.1f} us CPU per message"
    ) in proc.stdout
    assert not user_spool.exists() or not any(user_spool.iterdir())


def test_rounds_must_be_positive(tmp_path: Path) -> None:
    proc = run_cli("bench", "e2e", "--messages", "2", "--rounds", "0", "--sink", "builtin")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mailsflux: error: --rounds must be at least 1"
