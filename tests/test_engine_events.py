"""The Engine's event iterator carries the one event schema, as the API and files do."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Engine, Event, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def test_engine_events_are_the_one_schema(tmp_path: Path) -> None:
    def reply(address: str, n: int) -> str | None:
        return "550 5.1.1 no such user" if address.startswith("gone") else None

    async def go(url: str) -> list[Event]:
        async with Engine(engine_config(tmp_path, url)) as engine:
            got: list[Event] = []

            async def listen() -> None:
                async for e in engine.events():
                    got.append(e)
                    if len(got) == 2:
                        return

            task = asyncio.ensure_future(listen())
            await asyncio.sleep(0)
            for to in ("ann@example.net", "gone@example.net"):
                await engine.send(Message(sender="a@sender.example", to=to, subject="s", text="t"))
            await asyncio.wait_for(task, 30)
            return got

    with SMTPServer(RecordingHandler(reply)) as smtp:
        events = asyncio.run(go(smtp.url))
    by = {e.recipient: e for e in events}
    assert by["ann@example.net"].type == "delivered" and by["ann@example.net"].details.code == 250
    gone = by["gone@example.net"]
    assert gone.type == "bounced" and gone.details.enhanced_status == "5.1.1"
    assert all(e.id.startswith("evt_") and e.job == "engine" for e in events)
    assert events[0].position < events[1].position
