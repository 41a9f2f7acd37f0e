"""`bench smtp` against a real aiosmtpd server: exactly N messages arrive,
each DKIM-signed and personalised, and the result counts them so."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._mail import RecordingHandler, SMTPServer


def test_bench_smtp_delivers_exactly_n_messages(tmp_path: Path) -> None:
    handler = RecordingHandler()
    out = tmp_path / "r.json"
    with SMTPServer(handler) as server:
        proc = run_cli(
            "bench", "smtp", "--target", f"smtp://127.0.0.1:{server.port}",
            "--messages", "23", "--connections", "3", "--json", str(out),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(handler.received) == 23
    assert len({r.rcpt_tos[0] for r in handler.received}) == 23
    assert all(r.data.startswith(b"DKIM-Signature:") for r in handler.received)
    doc = json.loads(out.read_text())
    m = doc["metrics"]
    assert (m["delivered"], m["failed"], m["not_sent"]) == (23, 0, 0)
    assert doc["codes"]["eod"] == {"250": 23}
    assert doc["codes"]["connect"] == {"220": 3}
    assert m["latency_ms"]["message"]["count"] == 23
    # aiosmtpd offers no PIPELINING: the run says it went lock-step.
    assert any("PIPELINING" in n for n in doc["notes"])
    assert doc["machine"]["cores"] >= 1 and doc["versions"]["python"]
    assert "23 delivered" in proc.stdout
