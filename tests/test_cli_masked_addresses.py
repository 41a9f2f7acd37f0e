"""Addresses are masked in what the CLI prints and in the project's log records
(``j***@example.com``), and shown whole only when asked for:
``mailsflux --show-addresses`` (which worker processes inherit)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailsflux import masking
from tests._cli import run_cli
from tests._jobs import make_job

ROWS = [["ann.smith@example.com", "Ann", "Ann", "Pro"], ["bad..dot@example.org", "B", "B", "Pro"]]


def test_problem_lines_masked_unless_asked(tmp_path: Path) -> None:
    job = make_job(tmp_path, ROWS)
    for cmd in (["validate", str(job)], ["validate", str(job), "--json"]):
        r = run_cli(*cmd)
        assert r.returncode == 1, r.stderr
        assert "bad..dot@example.org" not in r.stdout + r.stderr
        assert "b***@example.org" in r.stdout + r.stderr
    shown = run_cli("--show-addresses", "validate", str(job))
    assert "bad..dot@example.org" in shown.stdout + shown.stderr


def test_workers_inherit_show_addresses(tmp_path: Path) -> None:
    job = make_job(tmp_path, ROWS)
    r = run_cli("--show-addresses", "send", str(job), "--local-sink", "--workers", "2", "-q")
    assert "bad..dot@example.org" in r.stderr, r.stderr  # from a worker process
    r = run_cli("send", str(job), "--local-sink", "--workers", "2", "-q", "--restart")
    assert "bad..dot@example.org" not in r.stderr and "b***@example.org" in r.stderr, r.stderr


def test_log_records_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(masking.SHOW_ENV, raising=False)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    log = masking.logger("mailsflux.test-masking")
    log.addHandler(Keep())
    log.propagate = False
    log.warning("refused %s: %s", "zoe.h@example.net", "550 <zoe.h@example.net> unknown")
    try:
        raise ValueError("no mailbox <zoe.h@example.net>")
    except ValueError:
        log.exception("while sending")
    assert records and not any("zoe.h@example.net" in r for r in records)
    assert "refused z***@example.net: 550 <z***@example.net> unknown" in records[0]
    assert "ValueError: no mailbox <z***@example.net>" in records[1]


def test_mask_address_forms() -> None:
    assert masking.mask_address("john@example.com") == "j***@example.com"
    assert masking.mask_text('{"recipient": "ann@x.test"} and <b@y.test>') == (
        '{"recipient": "a***@x.test"} and <b***@y.test>'
    )
