"""A relay that cannot be reached is a wrong setting: the first send says so
at once, as a job does, instead of the message deferring after every retry."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from mailsflux import DeliveryResult, Engine, Message, TemporaryDeliveryError
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_relay_fails_the_first_send(tmp_path: Path) -> None:
    port = closed_port()
    config = engine_config(tmp_path, f"smtp+plain://127.0.0.1:{port}")
    msg = Message(sender="a@sender.example", to="r@example.com", subject="s", text="t")

    async def go() -> None:
        async with Engine(config) as engine:
            with pytest.raises(TemporaryDeliveryError) as err:
                await engine.send(msg)
            assert f"cannot reach relay 127.0.0.1:{port}" in str(err.value)

    asyncio.run(go())


def test_concurrent_first_sends_share_one_start(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)
        msg = Message(sender="a@sender.example", to="r@example.com", subject="s", text="t")

        async def go() -> list[DeliveryResult]:
            async with Engine(config) as engine:
                return list(await asyncio.gather(*(engine.send(msg) for _ in range(5))))

        results = asyncio.run(go())
    assert [r.status for r in results] == ["delivered"] * 5
    assert len(handler.received) == 5
