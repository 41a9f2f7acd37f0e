"""A saved `bench smtp` result round-trips into `bench compare`, which lines
two results up with B/A ratios; a file that is not a result is one error line."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._scripted_smtp import ScriptedSMTP


def test_bench_json_round_trips_into_compare(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with ScriptedSMTP() as server:
        for path, conns in ((a, "1"), (b, "2")):
            proc = run_cli(
                "bench", "smtp", "--target", f"smtp://127.0.0.1:{server.port}",
                "--messages", "10", "--connections", conns, "--json", str(path),
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
    doc = json.loads(a.read_text())
    assert doc["kind"] == "smtp" and doc["settings"]["connections"] == 1
    proc = run_cli("bench", "compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    delivered = next(line for line in lines if line.startswith("delivered "))
    assert delivered.split()[1:] == ["10", "10", "1.00x"]
    assert any(line.startswith("latency_ms.message.p99 ") for line in lines)
    assert "a.json/b.json" not in proc.stdout and "b.json/a.json" in proc.stdout

    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    proc = run_cli("bench", "compare", str(a), str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"mailsflux: error: {bad}: not a mailsflux bench result (no mailsflux_bench: 1)"
    ]
