"""A delivered batch reaches the job's callers in one call (issue 17).

``send(on_results=...)`` hears each batch the scheduler reported all
delivered in one call; everything else still goes to ``on_result`` one at a
time. Each recording step stays on its own (the event log, the callback,
the progress display): a failing one skips none of the others and a
message counts once among the failures. The Engine passes a batch on only
to whoever takes results: its ``on_result``, a listener, a handle that
keeps them, a Batch's labels.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mailsflux import Batch, DeliveryResult, Engine, Message
from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send
from mailsflux.jobs.progress import Progress
from mailsflux.types import JobSummary
from tests._engine import engine_config, listening
from tests._jobs import make_job, people
from tests._scripted_smtp import Conn, ScriptedSMTP

N = 40


def _rejecting(gone: str) -> ScriptedSMTP:
    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith(f"RCPT TO:<{gone}>"):
            return f"550 5.1.1 <{gone}>: Recipient address rejected: User unknown"
        return None

    return ScriptedSMTP(script=script)


class _Sent(NamedTuple):
    rows: list[list[str]]
    gone: str
    summary: JobSummary
    one: list[DeliveryResult]
    batches: list[list[DeliveryResult]]
    events: list[dict[str, object]]
    progress: Progress


def _send(tmp_path: Path, *, fail_batches: bool) -> _Sent:
    """Send N rows, one refused with a 550, into a scripted server: what
    each callback heard, the event log's lines, the progress display."""
    rows = people(N)
    gone = rows[5][0]
    job = make_job(tmp_path, rows, connections=1, algorithm="ed25519-sha256")
    one: list[DeliveryResult] = []
    batches: list[list[DeliveryResult]] = []

    def on_results(rs: Sequence[DeliveryResult]) -> None:
        batches.append(list(rs))
        if fail_batches:
            raise RuntimeError("the caller's store is down")

    progress = Progress(N, stream=io.StringIO())
    events = tmp_path / "events.jsonl"
    prepared = Prepared.load(job)
    try:
        with _rejecting(gone) as server, events.open("wb") as fh:
            summary = asyncio.run(
                send(
                    prepared,
                    Relay("127.0.0.1", server.port, "none"),
                    on_problem=lambda p: None,
                    on_result=one.append,
                    on_results=on_results,
                    events=fh,
                    progress=progress,
                )
            )
    finally:
        prepared.close()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    return _Sent(rows, gone, summary, one, batches, lines, progress)


def test_a_delivered_batch_goes_to_on_results_and_the_rest_to_on_result(tmp_path: Path) -> None:
    got = _send(tmp_path, fail_batches=False)
    assert (got.summary.sent, got.summary.failed, got.summary.record_failures) == (N - 1, 1, 0)
    batched = [r for b in got.batches for r in b]
    assert got.batches and all(b for b in got.batches)
    assert {r.status for r in batched} == {"delivered"}
    # Every row heard exactly once, by one of the two.
    assert sorted(r.recipient for r in batched + got.one) == sorted(r[0] for r in got.rows)
    assert [r.recipient for r in got.one if r.status != "delivered"] == [got.gone]
    assert {r.row for r in batched}.isdisjoint({r.row for r in got.one})
    assert sorted(str(e["recipient"]) for e in got.events) == sorted(r[0] for r in got.rows)
    assert sorted(str(e["type"]) for e in got.events) == ["bounced"] + ["delivered"] * (N - 1)
    assert got.progress.done == N


def test_a_failing_batch_callback_skips_no_other_step(tmp_path: Path) -> None:
    got = _send(tmp_path, fail_batches=True)
    delivered = sum(len(b) for b in got.batches)
    assert delivered + len([r for r in got.one if r.status == "delivered"]) == N - 1
    assert delivered > 0
    # Counted once a message the callback failed for; the event log and the
    # display still have every result.
    assert got.summary.record_failures == delivered
    assert got.summary.record_error.startswith("result callback: RuntimeError: the caller's")
    assert got.summary.sent == N - 1
    assert len(got.events) == N
    assert got.progress.done == N


def test_the_engine_hands_a_batch_only_to_whoever_takes_results(tmp_path: Path) -> None:
    rows = people(N)
    heard: list[DeliveryResult] = []
    with _rejecting("nobody@example.invalid") as server:
        url = f"smtp+plain://127.0.0.1:{server.port}"
        job = make_job(tmp_path, rows, relay=url, connections=1)
        template = Message(
            sender="news@sender.example",
            to="",
            subject="n {{n}}",
            text="n={{n}}",
            tags=("spring",),
            metadata={"campaign": "c1"},
        )
        recipients = [{"email": f"b{i}@example.net", "n": str(i)} for i in range(N)]

        async def go() -> tuple[list[DeliveryResult], list[DeliveryResult], list[DeliveryResult]]:
            async with Engine(engine_config(tmp_path, url), on_result=heard.append) as engine:
                # Nobody iterates the handle: nothing kept, the callback hears all.
                quiet = await engine.submit(job, keep_results=False)
                assert (await quiet.wait()).sent == N
                kept = [r async for r in quiet]
                # A listener, and a Batch's labels on every result.
                seen, listener = await listening(engine)
                labelled = await engine.submit(
                    Batch(template=template, recipients=recipients), keep_results=False
                )
                assert (await labelled.wait()).sent == N
            await listener
            return kept, seen, [r async for r in labelled]

        kept, seen, labelled_kept = asyncio.run(go())
    assert kept == [] and labelled_kept == []
    assert sorted(r.recipient for r in heard[:N]) == sorted(r[0] for r in rows)
    assert sorted(r.recipient for r in seen) == sorted(r["email"] for r in recipients)
    assert all(r.tags == ("spring",) and r.metadata == {"campaign": "c1"} for r in seen)
    assert heard[N:] == seen
    assert {r.status for r in heard} == {"delivered"}
