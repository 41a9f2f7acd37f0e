"""A result callback that raises changes no outcome: each message is sent once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from msgspec.structs import replace

from mailsflux import Batch, DeliveryResult, Engine, JobSummary, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer


@pytest.mark.parametrize("kind", ["function", "coroutine"])
def test_a_raising_callback_changes_no_outcome(tmp_path: Path, kind: str) -> None:
    seen: list[DeliveryResult] = []

    def function(r: DeliveryResult) -> None:
        seen.append(r)
        raise RuntimeError("the embedder's bookkeeping is broken")

    async def coroutine(r: DeliveryResult) -> None:
        await asyncio.sleep(0.05)  # slow bookkeeping: still running when the job ends
        function(r)

    callback = function if kind == "function" else coroutine

    template = Message(sender="news@sender.example", to="", subject="Hi {{n}}", text="{{n}}")
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def go() -> tuple[list[DeliveryResult], JobSummary, int]:
            async with Engine(engine_config(tmp_path, server.url), on_result=callback) as e:
                sent = await asyncio.gather(
                    *(
                        e.send(replace(template, to=f"s{i}@example.com", data={"n": str(i)}))
                        for i in range(20)
                    )
                )
                rows = [{"email": f"b{i}@example.com", "n": str(i)} for i in range(30)]
                handle = await e.submit(Batch(template=template, recipients=rows))
                summary = await handle.wait()
            # Leaving waits for the last coroutine callbacks.
            return list(sent), summary, e.callback_failures

        sent, summary, failures = asyncio.run(go())
    assert [r.status for r in sent] == ["delivered"] * 20
    assert summary.sent == 30 and summary.failed == 0 and summary.total == 30
    assert failures == 50 and len(seen) == 50
    rcpts = sorted(r.rcpt_tos[0] for r in handler.received)
    want = sorted(
        [f"s{i}@example.com" for i in range(20)] + [f"b{i}@example.com" for i in range(30)]
    )
    assert rcpts == want
