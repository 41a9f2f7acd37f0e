"""An Engine honours a list opt-out made on the unsubscribe page: its sends
are one list, named by its config, as its tracking links say."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message, Tracking
from mailsflux.tracking.config import load_config
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def _mail(to: str) -> Message:
    return Message(sender="news@sender.example", to=to, subject="News", text="hello")


def test_a_list_opt_out_stops_the_engines_sends_only(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)
        config.name = "weekly"
        config.tracking = Tracking(
            config="tracking.toml", generate=True, base_url="https://t.sender.example"
        )

        async def go() -> list[DeliveryResult]:
            async with Engine(config) as engine:
                first = await engine.send(_mail("a@example.com"))
            store = load_config(tmp_path / "tracking.toml").open_store()
            try:
                assert store.suppress_list("a@example.com", "weekly")
                assert store.suppress_list("b@example.com", "another-list")
            finally:
                store.close()
            async with Engine(config) as engine:
                return [first] + [
                    await engine.send(_mail(to)) for to in ("a@example.com", "b@example.com")
                ]

        first, after, other = asyncio.run(go())
    assert first.status == "delivered"
    assert after.status == "suppressed"
    assert other.status == "delivered"  # out of another list only
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"], ["b@example.com"]]
