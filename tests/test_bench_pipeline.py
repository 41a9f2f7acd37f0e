"""`bench pipeline` costs every stage for Mailsflux and the plain-Python way
(dkimpy is a test extra, so its columns are there), next to the floor."""

from __future__ import annotations

import json
from pathlib import Path

from mailsflux.benchmark.pipeline import STAGES
from tests._cli import run_cli


def test_bench_pipeline_reports_every_stage(tmp_path: Path) -> None:
    out, page = tmp_path / "p.json", tmp_path / "p.html"
    proc = run_cli("bench", "pipeline", "--rows", "10", "--json", str(out), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    m = doc["metrics"]
    assert set(m["mailsflux_us"]) == set(STAGES)
    assert set(m["plain_us"]) == set(STAGES)
    assert all(v > 0 for v in m["mailsflux_us"].values())
    floors = {"rsa2048_sign", "ed25519_sign", "ed25519_sign_cryptography", "sha256"}
    assert set(m["floor_us"]) == floors
    # The job signs Ed25519 through libsodium (PyNaCl is a dependency): its floor is that sign.
    assert doc["versions"]["ed25519_signs_with"] == "libsodium"
    # Delivering has its floor too: the SMTP exchange alone, by the compiled client.
    assert doc["floor_by_stage"]["deliver"] >= 0
    deliver = next(ln for ln in proc.stdout.splitlines() if ln.startswith("deliver"))
    assert deliver.split()[-2] != "-"  # the floor column is filled
    assert doc["settings"]["rows"] == 10
    for stage in STAGES:
        assert any(line.startswith(stage) for line in proc.stdout.splitlines()), stage
    assert "plain/mailsflux" in proc.stdout
    # The page: the chart embedded, the table under it.
    text = page.read_text()
    assert "src='data:image/png;base64,iVBORw0KGgo" in text  # a PNG's first bytes
    assert "plain/mailsflux" in text
