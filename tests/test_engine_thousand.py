"""1,000 one-off messages through one Engine: each delivered, each once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer

N = 1000


def test_a_thousand_sends_each_arrive_exactly_once(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def go() -> list[DeliveryResult]:
            async with Engine(engine_config(tmp_path, server.url, connections=4)) as engine:
                return await asyncio.gather(
                    *(
                        engine.send(
                            Message(
                                sender="news@sender.example",
                                to=f"user{i}@example.com",
                                subject="Code {{code}}",
                                text="Your code is {{code}}.",
                                data={"code": str(i)},
                            )
                        )
                        for i in range(N)
                    )
                )

        results = asyncio.run(go())
    assert [r.status for r in results] == ["delivered"] * N
    # Each result is its own message's, in the order sent.
    assert [r.recipient for r in results] == [f"user{i}@example.com" for i in range(N)]
    assert len({r.message_id for r in results}) == N
    arrived = Counter(rcpt for got in handler.received for rcpt in got.rcpt_tos)
    assert arrived == Counter(f"user{i}@example.com" for i in range(N))
    for got in handler.received:
        i = got.rcpt_tos[0][4 : got.rcpt_tos[0].index("@")]
        assert f"Your code is {i}.".encode() in got.data
