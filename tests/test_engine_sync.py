"""SyncEngine: the Engine for scripts, on a private loop, from plain functions."""

from __future__ import annotations

from pathlib import Path

from mailsflux import DKIMKey, Message, SyncEngine
from tests._engine import engine_config
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def test_a_script_sends_one_message_and_runs_a_job(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, people(5), relay=server.url)
        with SyncEngine(engine_config(tmp_path, server.url)) as engine:
            one = engine.send(
                Message(sender="a@sender.example", to="x@example.net", subject="S", text="T")
            )
            summary = engine.run(job)
        # Configured by keywords alone, with the key made above.
        key = DKIMKey(domain="sender.example", selector="t1", key=str(tmp_path / "dkim/t1.pem"))
        with SyncEngine(relay=server.url, dkim=key) as engine:
            again = engine.send(
                Message(sender="a@sender.example", to="y@example.net", subject="S", text="T")
            )
    assert one.status == "delivered" and again.status == "delivered"
    assert summary.sent == 5 and summary.total == 5 and not summary.interrupted
    got = sorted(r.rcpt_tos[0] for r in handler.received)
    assert got == sorted(["x@example.net", "y@example.net"] + [p[0] for p in people(5)])
