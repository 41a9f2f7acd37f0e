"""A refused HELO/EHLO name is our configuration error, never a recipient's bounce.

Postfix says it at RCPT time by default (smtpd_delay_reject); other servers
refuse the EHLO itself. Either way: failed, category ``sender_config``,
counted toward stopping the site, and no recipient is bounced. A refused
connection is one refusal however many messages it fails, so here each
connection carries one message (messages_per_connection=1).
"""

from __future__ import annotations

import pytest

from mailsflux.delivery.scheduler import STOP_AFTER, RetryPolicy, SiteLimits
from tests._jobs import messages, schedule
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
    with ScriptedSMTP(**server) as smtp:  # type: ignore[arg-type]
        results = schedule(
            smtp.port,
            messages(n),
            default_limits=SiteLimits(connections=1, tls="none", messages_per_connection=1),
            retry=RetryPolicy(initial=0.01, attempts=3),
            local_hostname="localhost",
        )
    assert len(results) == n
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
    assert not any(r.status == "bounced" for r in results)
    assert smtp.bodies == []
    stops = [line for line in capsys.readouterr().err.splitlines() if "stopped" in line]
    assert len(stops) == 1 and "HELO" in stops[0]
