"""Entering a SyncEngine that is already entered raises, and the first entry goes on working."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mailsflux import ConfigError, Message, SyncEngine
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def _engine_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "mailsflux")


def test_entering_twice_raises_and_leaks_no_thread(tmp_path: Path) -> None:
    handler = RecordingHandler()
    before = _engine_threads()
    with SMTPServer(handler) as server:
        engine = SyncEngine(engine_config(tmp_path, server.url))
        with engine:
            with pytest.raises(ConfigError, match="already entered"):
                engine.__enter__()
            result = engine.send(
                Message(sender="a@sender.example", to="x@example.net", subject="S", text="T")
            )
        assert _engine_threads() == before
    assert result.status == "delivered"
    assert [r.rcpt_tos for r in handler.received] == [["x@example.net"]]
