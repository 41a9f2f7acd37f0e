"""SMTP replies are classified: 5xx bounces, 4xx is retried, then deferred."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer


def scripted(address: str, attempt: int) -> str | None:
    if address.startswith("gone@"):
        return "550 5.1.1 mailbox unavailable"
    if address.startswith("busy@") and attempt == 1:
        return "451 4.3.0 try again later"
    if address.startswith("never@"):
        return "421 4.7.28 rate limited"
    return None


def test_bounce_retry_and_defer(tmp_path: Path) -> None:
    rows = [
        ["ok@example.com", "", "Ok", "Team"],
        ["gone@example.com", "", "Gone", "Team"],
        ["busy@example.com", "", "Busy", "Team"],
        ["never@example.com", "", "Never", "Team"],
    ]
    handler = RecordingHandler(scripted)
    results: dict[str, DeliveryResult] = {}
    with SMTPServer(handler) as server:
        job = Prepared.load(make_job(tmp_path, rows, connections=1, attempts=2))
        summary = asyncio.run(
            send(
                job,
                Relay("127.0.0.1", server.port, "none"),
                on_problem=lambda p: None,
                on_result=lambda r: results.__setitem__(r.recipient, r),
            )
        )
    assert results["ok@example.com"].status == "delivered"
    gone = results["gone@example.com"]
    assert (gone.status, gone.code, gone.enhanced_status, gone.attempts) == (
        "bounced",
        550,
        "5.1.1",
        1,
    )
    busy = results["busy@example.com"]
    assert (busy.status, busy.attempts) == ("delivered", 2)
    never = results["never@example.com"]
    assert (never.status, never.code, never.enhanced_status, never.attempts) == (
        "deferred",
        421,
        "4.7.28",
        2,
    )
    assert (summary.sent, summary.failed, summary.deferred) == (2, 1, 1)
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ["busy@example.com", "ok@example.com"]
