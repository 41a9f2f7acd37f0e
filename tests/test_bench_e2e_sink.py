"""`bench e2e` runs a whole job through `mailsflux send` into the built-in
sink, which counts every message, and reports CPU next to the floor."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli


def test_bench_e2e_into_the_builtin_sink(tmp_path: Path) -> None:
    out, png = tmp_path / "e2e.json", tmp_path / "e2e.png"
    proc = run_cli(
        "bench", "e2e", "--messages", "15", "--sink", "builtin", "--workers", "1",
        "--algorithm", "ed25519-sha256", "--json", str(out), "--plot", str(png),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    m = doc["metrics"]
    assert m["sent"] == 15
    assert m["sink_messages"] == 15 + 1  # and the one-row send that times start-up
    assert doc["settings"]["sink"] == "mailsflux sink"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert m["cpu_us_per_msg"] > 0 and m["floor_us"]["ed25519_sign"] > 0
    # The floor is the sign the job makes (libsodium's), cryptography's beside it.
    assert "floor: bare Ed25519 sign (libsodium)" in proc.stdout
    assert "the same through cryptography" in proc.stdout
    assert m["floor_us"]["ed25519_sign_cryptography"] > 0
    # The exchange floor sent into a sink of its own: the job's counts only the job.
    assert m["exchange_msg_s"] > 0 and m["exchange_us_per_msg"] >= 0
    assert m["message_bytes"] > 1000
    assert "floor: the SMTP exchange alone (C, 8 connections)" in proc.stdout
    # aiosmtpd offers no PIPELINING: the floor went in lock-step, as the send
    # did; it offers SIZE: MAIL FROM said the size, as the send's did.
    assert m["exchange_connections"] == 8
    assert any(
        "2000 of the job's first message" in n and "without PIPELINING, MAIL FROM with SIZE=" in n
        for n in doc["notes"]
    )
