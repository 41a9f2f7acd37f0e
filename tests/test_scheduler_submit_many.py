"""``Scheduler.submit_many``: many messages queued in one pass, each exactly
as ``submit`` would queue it (order, back-pressure, a stopped site, close)."""

from __future__ import annotations

import asyncio

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import STOP_AFTER, RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult, RenderedMessage
from tests._mail import RecordingHandler, SMTPServer
from tests._scripted_smtp import Conn, ScriptedSMTP


def _msg(i: int, domain: str = "example.com") -> RenderedMessage:
    return RenderedMessage(
        "s@example.org", f"r{i}@{domain}", b"Subject: x\r\n\r\nhi\r\n", str(i), row=i + 1
    )


def _two_batches(port: int, first: int, total: int, **kw: object) -> list[DeliveryResult]:
    """``first`` messages, then (once all of them are final) the rest up to
    ``total``, each batch through submit_many; then close()."""
    results: list[DeliveryResult] = []
    resolver = MXResolver(smarthost=("127.0.0.1", port))

    async def go() -> None:
        scheduler = Scheduler(
            resolver,
            results.append,
            default_limits=SiteLimits(connections=1, tls="none"),
            **kw,  # type: ignore[arg-type]
        )
        await scheduler.submit_many([_msg(i) for i in range(first)])
        while len(results) < first:
            await asyncio.sleep(0.01)
        await scheduler.submit_many([_msg(i) for i in range(first, total)])
        await asyncio.wait_for(scheduler.close(), 10)

    asyncio.run(go())
    return results


class _Watched(Scheduler):
    """Notes the most messages ever queued at once."""

    most = 0

    def _place(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._place(*args, **kwargs)
        self.most = max(self.most, self._queued)


def test_batches_are_delivered_once_each_in_order_within_max_queued() -> None:
    handler = RecordingHandler()
    results: list[DeliveryResult] = []
    with SMTPServer(handler) as server:
        resolver = MXResolver(smarthost=("127.0.0.1", server.port))

        async def go() -> _Watched:
            scheduler = _Watched(
                resolver,
                results.append,
                default_limits=SiteLimits(connections=1, tls="none"),
                max_queued=5,
            )
            msgs = [_msg(i, f"d{i % 3}.example") for i in range(75)]
            for k in range(0, 75, 25):
                await scheduler.submit_many(msgs[k : k + 25])
            await scheduler.submit_many([])
            await scheduler.close()
            return scheduler

        scheduler = asyncio.run(go())
    assert [r.status for r in results] == ["delivered"] * 75
    assert sorted(int(r.message_id) for r in results) == list(range(75))
    # One session, so the server saw them in the order they were handed over.
    assert [m.rcpt_tos[0] for m in handler.received] == [
        f"r{i}@d{i % 3}.example" for i in range(75)
    ]
    assert 1 <= scheduler.most <= 5
    # Each domain's first message had no cached route (submit() looked it
    # up); every other one found its domain's route cached.
    assert resolver.misses == 3


def test_messages_placed_at_a_stopped_site_are_settled_and_close_returns() -> None:
    refusal = "553 5.1.8 <s@example.org>: Sender address rejected: Domain not found"

    def refuse(cmd: str, conn: Conn) -> str | None:
        return refusal if cmd.startswith("RCPT TO:") else None

    # The site stops on the first batch, and settles what it holds; the
    # second is placed at a site already stopped: each settled as it is placed.
    with ScriptedSMTP(script=refuse) as server:
        results = _two_batches(server.port, 10, 40)
    assert sorted(int(r.message_id) for r in results) == list(range(40))
    assert {r.status for r in results} == {"failed"}
    untried = [r for r in results if r.reply.startswith("not sent: site stopped")]
    assert len(untried) >= 40 - (STOP_AFTER + 1)
    assert all(int(r.message_id) >= 10 for r in results[10:])


def test_close_waits_for_a_batch_queued_after_everything_before_was_final() -> None:
    # All of the first batch is final (none open, idle set) before the second
    # comes, whose messages are greylisted once: while they wait for their
    # retry no session runs, so only counting them open keeps close() waiting.
    tries: dict[str, int] = {}

    def greylist(cmd: str, conn: Conn) -> str | None:
        if not cmd.startswith("RCPT TO:") or int(cmd[10:].split("@")[0]) < 5:
            return None
        tries[cmd] = tries.get(cmd, 0) + 1
        return "451 4.7.1 greylisted, try again" if tries[cmd] == 1 else None

    with ScriptedSMTP(script=greylist) as server:
        results = _two_batches(server.port, 5, 30, retry=RetryPolicy(initial=0.05, max_delay=0.05))
    assert sorted(int(r.message_id) for r in results) == list(range(30))
    assert {r.status for r in results} == {"delivered"}
    assert len(tries) == 25 and set(tries.values()) == {2}
