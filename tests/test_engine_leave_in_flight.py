"""Leaving an Engine while a message is in flight: no send slips in, nothing keeps running."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailsflux import DeliveryResult, Engine, Message
from mailsflux.errors import SchedulerClosedError
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


class HeldHandler(RecordingHandler):
    """Holds each message's DATA answer until released (so leaving finds it in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrived.set()
        await asyncio.to_thread(self.release.wait)
        return await super().handle_DATA(server, session, envelope)


def _message(i: int) -> Message:
    return Message(sender="a@sender.example", to=f"r{i}@example.com", subject="s", text="t")


def _scheduler_tasks() -> list[str]:
    names = (t.get_coro().__qualname__ for t in asyncio.all_tasks())  # type: ignore[union-attr]
    return [n for n in names if n.startswith("Scheduler.")]


async def _in_flight(engine: Engine, handler: HeldHandler) -> asyncio.Future[DeliveryResult]:
    first = asyncio.ensure_future(engine.send(_message(0)))
    await asyncio.to_thread(handler.arrived.wait, 10)
    return first


def test_a_send_while_leaving_raises_and_no_scheduler_outlives_the_engine(tmp_path: Path) -> None:
    handler = HeldHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)

        async def go() -> None:
            engine = Engine(config)
            await engine.__aenter__()
            try:
                first = await _in_flight(engine, handler)
                leaving = asyncio.ensure_future(engine.__aexit__(None, None, None))
                await asyncio.sleep(0)  # leaving has begun and waits for the first send
                with pytest.raises(SchedulerClosedError, match="closing"):
                    # The bound guards the test against a hang; it is no timing claim.
                    await asyncio.wait_for(engine.send(_message(1)), 10)
            finally:
                handler.release.set()
            await asyncio.wait_for(leaving, 10)
            assert (await first).status == "delivered"
            assert _scheduler_tasks() == []

        asyncio.run(go())
    assert [r.rcpt_tos for r in handler.received] == [["r0@example.com"]]


def test_a_cancelled_or_failed_leave_stops_sending_and_fails_waiting_sends(
    tmp_path: Path,
) -> None:
    handler = HeldHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)

        async def go() -> None:
            try:
                for failing in (False, True):
                    handler.arrived.clear()
                    engine = Engine(config)
                    await engine.__aenter__()
                    first = await _in_flight(engine, handler)
                    if failing:
                        await engine.__aexit__(RuntimeError, RuntimeError("app failed"), None)
                    else:  # a shutdown timeout around the leave
                        leaving = asyncio.ensure_future(engine.__aexit__(None, None, None))
                        await asyncio.sleep(0)
                        leaving.cancel()
                        await asyncio.gather(leaving, return_exceptions=True)
                    with pytest.raises(SchedulerClosedError):
                        await asyncio.wait_for(first, 10)
                    assert _scheduler_tasks() == []
                    assert not engine._entered
            finally:
                handler.release.set()

        asyncio.run(go())
