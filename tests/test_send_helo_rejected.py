"""A refused HELO/EHLO name is our configuration error, never a recipient's bounce.

Postfix says it at RCPT time by default (smtpd_delay_reject); other servers
refuse the EHLO itself. Either way: failed, category ``sender_config``,
counted toward stopping the site, and no recipient is bounced.
"""

from __future__ import annotations

import asyncio

import pytest

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import STOP_AFTER, RetryPolicy, Scheduler, SiteLimits
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import Conn, ScriptedSMTP

POSTFIX = "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"


def refuse_at_rcpt(cmd: str, conn: Conn) -> str | None:
    return POSTFIX if cmd.startswith("RCPT TO:") else None


@pytest.mark.parametrize(
    "server",
    [
        {"script": refuse_at_rcpt},
        {"helo_reply": "501 5.5.4 HELO/EHLO argument [localhost] invalid, closing connection."},
    ],
    ids=["postfix-at-rcpt", "at-ehlo"],
)
def test_helo_refusal_is_ours_and_stops_the_site(
    server: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    n = 3 * STOP_AFTER
    results: list[DeliveryResult] = []

    async def go(port: int) -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=SiteLimits(connections=1, tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=3),
            local_hostname="localhost",
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()

    with ScriptedSMTP(**server) as smtp:  # type: ignore[arg-type]
        asyncio.run(go(smtp.port))
    assert len(results) == n
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
    assert not any(r.status == "bounced" for r in results)
    assert smtp.bodies == []
    stops = [line for line in capsys.readouterr().err.splitlines() if "stopped" in line]
    assert len(stops) == 1 and "HELO" in stops[0]
