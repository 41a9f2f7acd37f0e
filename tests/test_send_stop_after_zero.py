"""stop_after=0 turns the site stop off: every message is tried.

Before, 0 meant "stop at the first refusal" (and ended every batch after
any failed reply).
"""

from __future__ import annotations

import pytest

from mailsflux.delivery.scheduler import STOP_AFTER, RetryPolicy, SiteLimits
from tests._jobs import messages, schedule
from tests._scripted_smtp import Conn, ScriptedSMTP

REFUSAL = "553 5.1.8 <news@sender.example>: Sender address rejected: Domain not found"


def refuse_sender(cmd: str, conn: Conn) -> str | None:
    return REFUSAL if cmd.startswith("RCPT TO:") else None


def test_stop_after_zero_tries_every_message(capsys: pytest.CaptureFixture[str]) -> None:
    n = 3 * STOP_AFTER
    with ScriptedSMTP(script=refuse_sender) as smtp:
        results = schedule(
            smtp.port,
            messages(n),
            default_limits=SiteLimits(connections=1, tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=3),
            stop_after=0,
        )
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
    assert len(results) == n
    assert sum(line.startswith("RCPT TO:") for line in smtp.lines) == n
    assert "stopped" not in capsys.readouterr().err
