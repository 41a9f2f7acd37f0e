"""A temporary (4xx) refusal of our sender is retried; it never stops the site.

Postfix reject_unverified_sender answers ``450 4.1.7 ... Address
verification in progress`` while it probes our address, and means it to be
retried. Before, five of them stopped the site for the whole run and 35 of
40 messages were reported deferred without another try.
"""

from __future__ import annotations

import pytest

from mailsflux.delivery.scheduler import STOP_AFTER, RetryPolicy, SiteLimits
from tests._jobs import messages, schedule
from tests._scripted_smtp import Conn, ScriptedSMTP

PROBING = (
    "450 4.1.7 <news@sender.example>: Sender address rejected: unverified address: "
    "Address verification in progress"
)


def test_sender_verification_in_progress_is_retried(capsys: pytest.CaptureFixture[str]) -> None:
    n = 40
    refused = 0

    def script(cmd: str, conn: Conn) -> str | None:
        nonlocal refused
        if cmd.startswith("RCPT TO:") and refused < STOP_AFTER:
            refused += 1
            return PROBING
        return None

    with ScriptedSMTP(script=script) as server:
        results = schedule(
            server.port,
            messages(n),
            default_limits=SiteLimits(connections=1, tls="none"),
            retry=RetryPolicy(initial=0.05, attempts=10),
        )
    assert refused == STOP_AFTER
    assert sorted(r.recipient for r in results) == sorted(m.rcpt_to for m in messages(n))
    assert {r.status for r in results} == {"delivered"}
    assert len(server.bodies) == n
    assert sorted(r.attempts for r in results)[-STOP_AFTER:] == [2] * STOP_AFTER
    assert "stopped" not in capsys.readouterr().err
