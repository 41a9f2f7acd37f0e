"""A suppression list file is honoured on every send, and again before each retry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult, Problem, RenderedMessage
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer
from tests._scripted_smtp import Conn, ScriptedSMTP


def test_listed_addresses_are_skipped_without_tracking(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, people(4))
        (job.parent / "suppressed.txt").write_text(
            "# unsubscribed by phone\nUSER1@example.org\n\nuser3@example.org  # bounced\n"
        )
        text = job.read_text().replace(
            "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{smtp.port}"
        )
        job.write_text(
            text.replace(
                'file = "recipients.csv"', 'file = "recipients.csv"\nsuppression = "suppressed.txt"'
            )
        )
        problems: list[Problem] = []
        prepared = Prepared.load(job)
        summary = asyncio.run(send(prepared, on_problem=problems.append))
        prepared.close()
    assert (summary.sent, summary.skipped) == (2, 2)
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "user0@example.com",
        "user2@example.com",
    ]
    assert sorted(p.message.split(":")[0] for p in problems) == [
        "user1@example.org",
        "user3@example.org",
    ]


def test_an_unsubscribe_during_backoff_stops_the_retry() -> None:
    suppressed: set[str] = set()
    results: list[DeliveryResult] = []

    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith("RCPT TO:<late@"):
            suppressed.add("late@example.com")  # unsubscribed while we wait
            return "451 4.3.0 try again later"
        return None

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=5),
        )
        s.suppressed = suppressed
        await s.submit(
            RenderedMessage(
                mail_from="s@sender.example",
                rcpt_to="late@example.com",
                data=b"Subject: x\r\n\r\nx\r\n",
                message_id="1",
            )
        )
        await s.close()

    with ScriptedSMTP(script=script) as server:
        asyncio.run(go(server.port))
    assert [(r.status, r.attempts) for r in results] == [("skipped", 1)]
    assert server.bodies == []
