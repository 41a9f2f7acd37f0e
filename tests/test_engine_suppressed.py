"""A suppressed address gets a "suppressed" result and is never sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def test_a_listed_address_is_suppressed_in_any_spelling(tmp_path: Path) -> None:
    (tmp_path / "never.txt").write_text("# unsubscribed by phone\nGone@Example.COM\n")
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)
        config.suppression = "never.txt"

        def msg(to: str) -> Message:
            return Message(
                sender="news@sender.example", to=to, subject="Hi", text="Hi", tags=("t",)
            )

        async def go() -> tuple[DeliveryResult, DeliveryResult]:
            async with Engine(config) as engine:
                gone = await engine.send(msg("Gone Person <gone@example.com>"))
                kept = await engine.send(msg("kept@example.com"))
                return gone, kept

        gone, kept = asyncio.run(go())
    assert gone.status == "suppressed" and gone.recipient == "gone@example.com"
    assert gone.tags == ("t",) and gone.code is None
    assert kept.status == "delivered"
    assert [r.rcpt_tos for r in handler.received] == [["kept@example.com"]]
