"""The 421 a server sends as it closes an idle session is heard by the shaper.

Yahoo-style ``421 4.7.0 [TSS04] ... temporarily deferred`` arrives on a
session kept open while the site's rate made us wait. Before, the reply was
thrown away with the session and the next connection opened at once, so
the site was never slowed down.
"""

from __future__ import annotations

from mailsflux.delivery.scheduler import RetryPolicy, SiteLimits
from mailsflux.delivery.shaping import Shaper
from tests._jobs import messages, schedule
from tests._scripted_smtp import ScriptedSMTP

TSS04 = (
    "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected "
    "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
)


def test_a_parting_421_slows_the_site() -> None:
    n = 2
    shaper = Shaper()
    with ScriptedSMTP(idle_close=0.2, idle_reply=TSS04) as server:
        results = schedule(
            server.port,
            messages(n),
            default_limits=SiteLimits(connections=1, tls="none", rate=1.0, burst=1),
            retry=RetryPolicy(initial=0.01, attempts=1),
            shaper=shaper,
        )
    assert sorted((r.status, r.attempts) for r in results) == [("delivered", 1)] * n
    assert server.sessions >= 2
    shaped = shaper.shaped_sites()
    assert [limit.rule for limits in shaped.values() for limit in limits] == ["yahoo-TSS04"]
