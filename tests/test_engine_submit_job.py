"""Engine.submit: a job file and a Batch, results as they come and live counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Batch, DeliveryResult, Engine, JobSummary, Message
from tests._engine import engine_config
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def test_job_file_and_batch_results_reach_the_handle_and_the_engine(tmp_path: Path) -> None:
    handler = RecordingHandler()
    rows = people(12)
    rows.insert(3, ["not-an-address", "X", "X", "Team"])
    with SMTPServer(handler) as server:
        job = make_job(tmp_path, rows, relay=server.url)
        template = Message(
            sender="news@sender.example",
            to="",
            subject="Batch {{n}}",
            text="n={{n}} {{greeting}}",
            data={"greeting": "hello"},
            tags=("batch",),
        )
        batch_rows = [{"email": f"b{i}@example.net", "n": str(i)} for i in range(8)]
        batch_rows.append({"email": "b-bad@", "n": "x"})
        batch_rows.append({"email": "b-missing@example.net"})  # no n: skipped

        async def go() -> tuple[
            list[DeliveryResult], JobSummary, list[DeliveryResult], JobSummary, list[str]
        ]:
            async with Engine(engine_config(tmp_path, server.url)) as engine:
                everything: list[DeliveryResult] = []

                async def listen() -> None:
                    async for r in engine.results():
                        everything.append(r)

                listener = asyncio.ensure_future(listen())
                await asyncio.sleep(0)
                h1 = await engine.submit(job)
                from_file = [r async for r in h1]
                s1 = await h1.wait()
                h2 = await engine.submit(Batch(template=template, recipients=batch_rows))
                from_batch = [r async for r in h2]
                s2 = await h2.wait()
                assert h2.counts is s2  # the live tally is the summary
                problems = [str(p) for p in h1.problems + h2.problems]
            await listener
            assert len(everything) == len(from_file) + len(from_batch)
            return from_file, s1, from_batch, s2, problems

        from_file, s1, from_batch, s2, problems = asyncio.run(go())
    assert s1.sent == 12 and s1.skipped == 1 and len(from_file) == 12
    assert s2.sent == 8 and s2.skipped == 2 and len(from_batch) == 8
    assert {r.tags for r in from_batch} == {("batch",)}
    assert any("row 9" in p and "row skipped" in p for p in problems)
    assert any("row 10" in p and "'n'" in p for p in problems)
    bodies = {r.rcpt_tos[0]: r.data for r in handler.received}
    assert len(bodies) == 20
    assert b"n=3 hello" in bodies["b3@example.net"]
