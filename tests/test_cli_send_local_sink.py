"""The demo path: the example job, sent end to end into the local sink."""

from __future__ import annotations

import json
from pathlib import Path

from mailsflux.dkim.keyfiles import txt_path_for
from tests._cli import run_cli
from tests._mail import dkim_verify, parse, txt_record


def test_example_job_end_to_end(welcome_job: Path, tmp_path: Path) -> None:
    saved = tmp_path / "received"
    proc = run_cli("send", str(welcome_job), "--local-sink", "--sink-save", str(saved), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    # 1,200 rows, three bad on purpose (see examples/welcome/make_recipients.py).
    assert summary["total"] == 1200
    assert summary["skipped"] == 3
    assert summary["sent"] == 1197
    assert summary["failed"] == summary["deferred"] == 0
    assert sum(summary["per_domain"].values()) == 1197
    assert "xn--bcher-kva.example" in summary["per_domain"]
    assert summary["local_sink"]["messages"] == 1197
    assert summary["local_sink"]["dkim_signed"] == 1197

    csv_path = welcome_job.parent / "recipients.csv"
    # With --json each problem is a JSON line on stderr.
    problems = [json.loads(ln) for ln in proc.stderr.splitlines() if ln.startswith("{")]
    for line, why in ((43, "field email"), (404, "plan"), (779, "header To")):
        found = any(p["where"] == f"{csv_path}:{line}" and why in p["what"] for p in problems)
        assert found, (line, proc.stderr)
    assert "generated DKIM key" in proc.stderr

    # The key was made on first use, private, with its DNS record beside it.
    key = welcome_job.parent / "dkim" / "mf2026.northwind.example.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    record = txt_record(txt_path_for(key))
    files = sorted(saved.iterdir())
    assert len(files) == 1197
    for f in files[:: len(files) // 25]:
        data = f.read_bytes()
        assert dkim_verify(data, record, selector="mf2026", domain="northwind.example")
        msg = parse(data)
        assert msg["From"].addresses[0].addr_spec == "hello@northwind.example"
        assert msg["Subject"].startswith("Welcome to Northwind, ")
        assert "Mallory" not in data.decode("ascii")


def test_human_summary_and_second_run_reuses_the_key(welcome_job: Path) -> None:
    first = run_cli("send", str(welcome_job), "--local-sink", "-q")
    assert first.returncode == 0, first.stderr
    assert "sent      1197" in first.stdout
    assert "per domain (sent):" in first.stdout
    assert "local sink received 1197 messages, 1197 DKIM-signed" in first.stdout
    key = welcome_job.parent / "dkim" / "mf2026.northwind.example.pem"
    pem = key.read_bytes()
    second = run_cli("send", str(welcome_job), "--local-sink", "-q")
    assert second.returncode == 0, second.stderr
    assert "generated DKIM key" not in second.stderr
    assert key.read_bytes() == pem
