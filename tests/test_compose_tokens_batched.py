"""A job's rows take their message tokens (Message-ID and MIME boundary) a
batch at a time from one read of the OS: still one token a message, never
two messages with one, in one process or across forked workers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from mailsflux.jobs import Prepared
from mailsflux.jobs.composer import message_tokens
from tests._jobs import make_job, people

_TOKEN = re.compile(r"[0-9a-f]{20}")


def test_tokens_are_distinct_and_shaped_as_before() -> None:
    tokens = message_tokens(1000) + message_tokens(1000)
    assert all(_TOKEN.fullmatch(t) for t in tokens)
    assert len(set(tokens)) == 2000
    assert message_tokens(0) == []


def test_every_row_gets_its_own_token(tmp_path: Path) -> None:
    n = 150  # more than one batch of tokens
    prepared = Prepared.load(make_job(tmp_path, people(n), algorithm="ed25519-sha256"))
    try:
        msgs = list(prepared.messages(lambda p: None))
    finally:
        prepared.close()
    assert len(msgs) == n
    tokens = [m.message_id.split(".", 1)[0] for m in msgs]
    assert all(_TOKEN.fullmatch(t) for t in tokens), tokens[:3]
    assert len(set(tokens)) == n
    for m, token in zip(msgs, tokens, strict=True):
        assert m.message_id == f"{token}.{m.row}@sender.example"
        assert token.encode() in m.data.split(b"\r\n\r\n", 1)[0]  # the boundary


def test_forked_workers_never_share_a_token(tmp_path: Path) -> None:
    n = 200
    job = make_job(tmp_path, people(n))
    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "mailsflux", "send", str(job), "--local-sink", "--json", "-q",
         "--workers", "2", "--events", str(events), "--events-plain"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    ids = [json.loads(ln)["message_id"] for ln in events.read_text().splitlines()]
    assert len(ids) == n
    assert len({i.split(".", 1)[0] for i in ids}) == n
