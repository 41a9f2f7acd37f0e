"""One refused connection is one refusal, however many messages it failed.

The first session's EHLO is refused (5xx: our HELO name), later ones are
accepted. Before, the refusal counted once per message of the batch, so
one refusal stopped the site and every other message was reported failed
without being tried.
"""

from __future__ import annotations

import pytest

from mailsflux.delivery.scheduler import BATCH, RetryPolicy, SiteLimits
from tests._jobs import messages, schedule
from tests._scripted_smtp import ScriptedSMTP

REFUSAL = "550 5.7.1 <localhost>: Helo command rejected: Host not found"


def test_one_refused_connection_does_not_stop_the_site(
    capsys: pytest.CaptureFixture[str],
) -> None:
    n = BATCH + 8
    with ScriptedSMTP(helo_reply=REFUSAL, helo_refusals=1) as smtp:
        results = schedule(
            smtp.port,
            messages(n),
            default_limits=SiteLimits(connections=1, tls="none"),
            retry=RetryPolicy(initial=0.01, attempts=3),
            local_hostname="localhost",
        )
    assert len(results) == n
    failed = [r for r in results if r.status != "delivered"]
    # The refused session's batch failed (our setup, no bounce); the rest went.
    assert failed and {(r.status, r.category) for r in failed} == {("failed", "sender_config")}
    assert not any("site stopped" in r.reply for r in results)
    assert len(smtp.bodies) == n - len(failed) > 0
    assert "stopped" not in capsys.readouterr().err
