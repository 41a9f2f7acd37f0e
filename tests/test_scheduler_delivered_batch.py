"""A batch whose every message was delivered is reported in one call
(``Scheduler.on_delivered``, issue 17): the same results, in the same
order, as one ``on_result`` call each; any other batch goes one by one; a
raising callback is counted once a result and never hangs close(). The
spool records a batch writes (``Journal.settle_delivered``) are the
records ``Journal.settle`` writes for the same results."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import BATCH, Scheduler, SiteLimits
from mailsflux.jobs.jobfile import load_job
from mailsflux.jobs.journal import open_spool, start
from mailsflux.spool import Record
from mailsflux.types import DeliveryResult, RenderedMessage
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer


def _msgs(n: int) -> list[RenderedMessage]:
    return [
        RenderedMessage(
            "s@example.org",
            f"r{i}@D{i % 3}.Example",  # the domain as written, not lowercased
            b"Subject: x\r\n\r\nhi\r\n",
            f"id{i}",
            row=i + 1,
        )
        for i in range(n)
    ]


class _Calls:
    def __init__(self) -> None:
        self.one: list[DeliveryResult] = []
        self.batches: list[list[DeliveryResult]] = []

    def delivered(self, rs: list[DeliveryResult]) -> None:
        self.batches.append(list(rs))


def _run(port: int, n: int, *, batched: bool, connections: int = 1) -> tuple[_Calls, Scheduler]:
    calls = _Calls()

    async def go() -> Scheduler:
        scheduler = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            calls.one.append,
            default_limits=SiteLimits(connections=connections, tls="none"),
        )
        if batched:
            scheduler.on_delivered = calls.delivered
        await scheduler.submit_many(_msgs(n))
        await asyncio.wait_for(scheduler.close(), 20)
        return scheduler

    return calls, asyncio.run(go())


def test_a_delivered_batch_is_one_call_with_what_one_call_each_would_say() -> None:
    with SMTPServer(RecordingHandler()) as server:
        plain, _ = _run(server.port, 100, batched=False)
        calls, _ = _run(server.port, 100, batched=True)
    assert calls.one == []
    assert 100 // BATCH <= len(calls.batches) and all(1 <= len(b) <= BATCH for b in calls.batches)
    got = [r for b in calls.batches for r in b]
    # One session: both runs report the messages in the order submitted.
    assert got == plain.one
    assert [r.row for r in got] == list(range(1, 101))
    assert {(r.status, r.code, r.enhanced_status, r.reply, r.category) for r in got} == {
        ("delivered", 250, "2.0.0", "2.0.0 queued", "delivered")
    }
    assert got[0].domain == "d0.example" and got[0].attempts == 1


def test_a_batch_with_a_refusal_is_reported_one_result_at_a_time() -> None:
    def refuse(address: str, n: int) -> str | None:
        return "550 5.1.1 no such user" if address == "r7@D1.Example" else None

    with SMTPServer(RecordingHandler(refuse)) as server:
        calls, _ = _run(server.port, 2 * BATCH, batched=True)
    by_id = {r.message_id: r for r in calls.one + [r for b in calls.batches for r in b]}
    assert len(by_id) == 2 * BATCH == len(calls.one) + sum(len(b) for b in calls.batches)
    assert by_id["id7"].status == "bounced" and by_id["id7"].enhanced_status == "5.1.1"
    # The refused message's batch went one by one, its other messages too.
    assert "id7" in {r.message_id for r in calls.one} and len(calls.one) > 1
    assert all(r.status == "delivered" for b in calls.batches for r in b)
    assert calls.batches, "the batches without a refusal are still one call each"


def test_a_raising_batch_callback_counts_each_result_and_close_returns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(rs: list[DeliveryResult]) -> None:
        raise RuntimeError("bookkeeping down")

    with SMTPServer(RecordingHandler()) as server:

        async def go() -> Scheduler:
            scheduler = Scheduler(
                MXResolver(smarthost=("127.0.0.1", server.port)),
                lambda r: None,
                default_limits=SiteLimits(connections=1, tls="none"),
            )
            scheduler.on_delivered = fail
            await scheduler.submit_many(_msgs(70))
            await asyncio.wait_for(scheduler.close(), 20)
            return scheduler

        scheduler = asyncio.run(go())
        received = len(server.handler.received)  # type: ignore[attr-defined]
    assert received == 70  # each sent once: a failed record is not a resend
    assert scheduler.callback_failures == 70
    err = capsys.readouterr().err
    assert err.count("the result callback failed (RuntimeError: bookkeeping down)") == 1


def test_submit_many_starts_the_workers_one_message_at_a_time_would() -> None:
    # The queue a batch joins directly (same route as the message before)
    # gets the workers _place would have started message by message.
    with SMTPServer(RecordingHandler()) as server:

        async def workers(many: bool) -> int:
            scheduler = Scheduler(
                MXResolver(smarthost=("127.0.0.1", server.port)),
                lambda r: None,
                default_limits=SiteLimits(connections=8, tls="none"),
                max_queued=1000,
            )
            msgs = [
                RenderedMessage("s@example.org", f"r{i}@example.com", b"x\r\n", f"{i}")
                for i in range(101)
            ]
            # The first alone looks up the route; the rest find it cached.
            await scheduler.submit(msgs[0])
            if many:
                await scheduler.submit_many(msgs[1:])
            else:
                for m in msgs[1:]:
                    await scheduler.submit(m)
            (site,) = scheduler._sites.values()
            started = site.workers
            await asyncio.wait_for(scheduler.close(), 20)
            return started

        one_by_one = asyncio.run(workers(False))
        batched = asyncio.run(workers(True))
    assert one_by_one == batched == min(8, 1 + 100 // (BATCH // 2))


def _records(tmp_path: Path, name: str, batched: bool, prior: bool) -> list[Record]:
    (tmp_path / name).mkdir()
    job = load_job(make_job(tmp_path / name, people(3)))
    spool = open_spool(job)
    try:
        journal = start(job, spool)
        results = [
            DeliveryResult(
                f"user{i}@Example.COM",
                f"m{i}",
                "delivered",
                250,
                "2.0.0",
                "2.0.0 ok",
                1,
                i + 1,
                "delivered",
            )
            for i in range(3)
        ]
        if prior:  # a queue run: the rows' earlier attempts count, and their first try
            journal.prior = {
                i + 1: Record(row=i + 1, state="deferred", attempts=2, first_at=100.0 + i)
                for i in range(3)
            }
            journal.held = {1, 2, 3}
        if batched:
            assert journal.settle_delivered(results) == [r.domain for r in results]
        else:
            for r in results:
                journal.settle(r)
        assert not journal.prior and not journal.held
        journal.flush()
        return spool.records(journal.id)
    finally:
        spool.close()


@pytest.mark.parametrize("prior", [False, True])
def test_settle_delivered_writes_what_settle_writes(tmp_path: Path, prior: bool) -> None:
    one = _records(tmp_path, "one", batched=False, prior=prior)
    many = _records(tmp_path, "many", batched=True, prior=prior)
    assert len(one) == len(many) == 3

    def fields(r: Record) -> dict[str, object]:
        d = msgspec.structs.asdict(r)
        if not prior:  # first tried now: a timestamp of each run
            d.pop("first_at")
        d.pop("updated")
        return d

    assert [fields(r) for r in many] == [fields(r) for r in one]
    assert many[0].domain == "example.com"
    assert [r.attempts for r in many] == ([3, 3, 3] if prior else [1, 1, 1])
    if prior:
        assert [r.first_at for r in many] == [100.0, 101.0, 102.0]
