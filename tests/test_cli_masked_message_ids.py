"""Masking addresses in what the CLI prints leaves machine-readable output
whole: a Message-ID (``queue show --json``, a ``Message-ID:`` header line) names
a message, not a person, and stays as it is, while the recipient beside it is
masked; a relay URL's user and password are replaced whole by ``***`` (no
first character of the password)."""

from __future__ import annotations

import json
from pathlib import Path

from mailsflux import masking
from tests._cli import run_cli
from tests._jobs import make_job, people


def test_queue_show_json_keeps_the_message_id(tmp_path: Path) -> None:
    rows = people(2)
    job = make_job(tmp_path, rows)
    r = run_cli("send", str(job), "--local-sink", "-q")
    assert r.returncode == 0, r.stderr
    for shown in (False, True):
        flag = ["--show-addresses"] if shown else []
        r = run_cli(*flag, "queue", "show", "job", "2", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert "***" not in doc["message_id"] and "@" in doc["message_id"], doc
        assert doc["recipient"] == (rows[0][0] if shown else masking.mask_address(rows[0][0]))
        text = run_cli(*flag, "queue", "show", "job", "2")
        assert f" {doc['message_id']}\n" in text.stdout


def test_message_id_lines_and_relay_urls() -> None:
    assert masking.mask_text("Message-ID: <20261129.abc123@mail.example.com>") == (
        "Message-ID: <20261129.abc123@mail.example.com>"
    )
    assert masking.mask_text('{"message_id": "<a.1@mx.example.org>", "to": "jo@example.com"}') == (
        '{"message_id": "<a.1@mx.example.org>", "to": "j***@example.com"}'
    )
    assert masking.mask_text("550 5.1.1 <john@example.com>: no such user") == (
        "550 5.1.1 <j***@example.com>: no such user"
    )
    for url in ("smtp://user:s3cret@relay.example.com:587", "redis://:pw@host:6379/0"):
        masked = masking.mask_text(f"relay {url} refused")
        assert "s3cret"[:1] + "***" not in masked and ":p" not in masked, masked
        assert "://***@" in masked, masked
