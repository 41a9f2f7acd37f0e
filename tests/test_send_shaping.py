"""Reply-driven shaping in the scheduler: a throttling reply suspends or slows a site.

Gaps are measured at the server and checked one way only (never sooner,
never faster), so a slow machine cannot make these fail.
"""

from __future__ import annotations

import asyncio
import time

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.delivery.shaping import Shaper, ShapingRule
from mailsflux.types import DeliveryResult
from tests._jobs import messages
from tests._scripted_smtp import Conn, ScriptedSMTP


def run(port: int, shaper: Shaper, limits: SiteLimits, n: int) -> list[DeliveryResult]:
    results: list[DeliveryResult] = []

    async def go() -> None:
        s = Scheduler(
            MXResolver(smarthost=("127.0.0.1", port)),
            results.append,
            default_limits=limits,
            shaper=shaper,
            retry=RetryPolicy(initial=0.01, attempts=5),
        )
        for m in messages(n):
            await s.submit(m)
        await s.close()

    asyncio.run(go())
    return results


class Recorder:
    """Scripts one throttling reply and timestamps every accepted message."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.sent_reply_at: float | None = None
        self.accepted: list[float] = []
        self.accepted_by: dict[str, float] = {}
        self._rcpt = ""

    def __call__(self, cmd: str, conn: Conn) -> str | None:
        if cmd.startswith("RCPT TO:"):
            self._rcpt = cmd[9:].split(">")[0]
        if cmd.startswith("RCPT TO:<r0@") and self.sent_reply_at is None:
            self.sent_reply_at = time.monotonic()
            return self.reply
        if cmd == ".":
            self.accepted.append(time.monotonic())
            self.accepted_by[self._rcpt] = self.accepted[-1]
        return None


def test_a_suspend_rule_pauses_the_site_then_it_resumes() -> None:
    rule = ShapingRule(name="test-suspend", action="suspend", duration=0.6, text="S3150")
    rec = Recorder("451 4.7.500 Server busy (S3150)")
    with ScriptedSMTP(script=rec) as server:
        results = run(
            server.port, Shaper([rule]), SiteLimits(connections=1, tls="none", burst=1), 4
        )
    assert {r.status for r in results} == {"delivered"}
    assert rec.sent_reply_at is not None
    # The refused message goes again only once the suspension has ended, and
    # so does the rest of its batch, but for the one message whose envelope
    # was already on the wire (pipelined) when the reply came.
    assert rec.accepted_by["r0@example.com"] - rec.sent_reply_at >= 0.6 - 0.01
    later = sorted(t for t in rec.accepted if t > rec.sent_reply_at)
    assert len(later) == 4
    assert later[1] - rec.sent_reply_at >= 0.6 - 0.01


def test_a_slow_rule_halves_the_site_rate() -> None:
    rule = ShapingRule(name="test-slow", action="slow", duration=60, factor=0.5, enhanced="4.7.28")
    rec = Recorder("421 4.7.28 Our system has detected an unusual rate")
    rate, burst = 40.0, 2
    with ScriptedSMTP(script=rec) as server:
        results = run(
            server.port,
            Shaper([rule]),
            SiteLimits(connections=1, tls="none", rate=rate, burst=burst),
            24,
        )
    assert sum(r.status == "delivered" for r in results) == 24
    assert rec.sent_reply_at is not None
    later = sorted(t for t in rec.accepted if t > rec.sent_reply_at)
    # At the halved rate: at most burst + (rate / 2) * window in any window.
    for i, t0 in enumerate(later):
        for j in range(i + 1, len(later)):
            assert j - i + 1 <= burst + rate / 2 * (later[j] - t0 + 0.25) + 1, (i, j)
