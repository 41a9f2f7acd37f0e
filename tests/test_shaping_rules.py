"""Reply-driven shaping with an injected clock: slow down, suspend, restore by themselves."""

from __future__ import annotations

import pytest

from mailsflux.delivery.bounce import Reply
from mailsflux.delivery.mx import Site
from mailsflux.delivery.shaping import DEFAULT_RULES, Limit, Shaper, ShapingRule
from mailsflux.types import DeliveryResult

GMAIL = "mx:gmail-smtp-in.l.google.com/5#0c1d2e3f"
OUTLOOK = "mx:outlook-com.olc.protection.outlook.com"
YAHOO = "mx:am0.yahoodns.net/3#12345678"
OTHER = "mx:mx1.example.com"

RATE_LIMITED = Reply(
    421,
    "4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address. To protect our users from spam, mail sent from your "
    "IP address has been temporarily rate limited. - gsmtp",
)
S3150 = Reply(
    550,
    "5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
    "Internet service provider since part of their network is on our block list (S3150).",
)


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("rule", DEFAULT_RULES, ids=[r.name for r in DEFAULT_RULES])
def test_every_default_rule_matches_its_example(rule: ShapingRule) -> None:
    assert rule.source and rule.example[1]
    shaper = Shaper([rule])
    assert shaper.matching(OTHER, rule.example) == [rule]


def test_gmail_4728_slows_the_site_then_restores() -> None:
    shaper = Shaper()
    t0 = 100.0
    applied = shaper.observe(GMAIL, RATE_LIMITED, now=t0)
    assert [r.name for r in applied] == ["gmail-4.7.28"]
    assert shaper.effective_rate(GMAIL, 40.0, now=t0) == 20.0
    assert shaper.effective_rate(GMAIL, 40.0, now=t0 + 15 * 60 - 1) == 20.0
    assert shaper.suspended_until(GMAIL, now=t0) is None
    # Restored once the duration has passed; the state is gone.
    assert shaper.effective_rate(GMAIL, 40.0, now=t0 + 15 * 60) == 40.0
    assert shaper.shaped_sites(now=t0 + 15 * 60) == {}


def test_the_scripted_reply_of_the_send_tests_slows_too() -> None:
    # What aiosmtpd sends in tests/test_send_replies.py, as the delivery records it.
    result = DeliveryResult(
        recipient="never@example.com",
        message_id="<1@x>",
        status="deferred",
        code=421,
        enhanced_status="4.7.28",
        reply="4.7.28 rate limited",
    )
    shaper = Shaper()
    assert shaper.observe(OTHER, result, now=0.0)
    assert shaper.effective_rate(OTHER, 10.0, now=1.0) == 5.0
    # A raw reply line works as well.
    assert Shaper().observe(OTHER, (None, "421 4.7.28 rate limited"), now=0.0)


def test_repeated_replies_extend_but_do_not_compound() -> None:
    shaper = Shaper()
    for t in range(0, 600, 10):
        shaper.observe(GMAIL, RATE_LIMITED, now=float(t))
    assert shaper.effective_rate(GMAIL, 40.0, now=600.0) == 20.0
    (limit,) = shaper.active(GMAIL, now=600.0)
    assert limit == Limit("gmail-4.7.28", "slow", 0.5, 590.0 + 15 * 60)
    assert shaper.effective_rate(GMAIL, 40.0, now=590.0 + 15 * 60) == 40.0


def test_different_rules_multiply_down_to_the_floor() -> None:
    rules = [
        ShapingRule("a", "slow", duration=60, factor=0.1, text="alpha"),
        ShapingRule("b", "slow", duration=120, factor=0.1, text="beta"),
        ShapingRule("c", "slow", duration=30, factor=0.5, text="gamma"),
    ]
    shaper = Shaper(rules, min_factor=0.02)
    shaper.observe(OTHER, (451, "alpha"), now=0.0)
    shaper.observe(OTHER, (451, "beta"), now=0.0)
    assert shaper.effective_rate(OTHER, 100.0, now=1.0) == pytest.approx(2.0)  # floored
    shaper.observe(OTHER, (451, "gamma"), now=0.0)
    assert shaper.effective_rate(OTHER, 100.0, now=40.0) == pytest.approx(1.0 * 2)  # a,b: 0.01
    assert shaper.effective_rate(OTHER, 100.0, now=61.0) == pytest.approx(10.0)  # b only
    assert shaper.effective_rate(OTHER, 100.0, now=120.0) == 100.0


def test_s3150_suspends_then_resumes() -> None:
    clock = Clock()
    shaper = Shaper(clock=clock)
    assert [r.name for r in shaper.observe(OUTLOOK, S3150)] == ["microsoft-S3150"]
    assert shaper.suspended_until(OUTLOOK) == clock.now + 3600
    assert shaper.effective_rate(OUTLOOK, 30.0) == 0.0
    clock.now += 3599
    assert shaper.suspended_until(OUTLOOK) == clock.now + 1
    clock.now += 1
    assert shaper.suspended_until(OUTLOOK) is None
    assert shaper.effective_rate(OUTLOOK, 30.0) == 30.0


def test_operator_resume_lifts_limits() -> None:
    shaper = Shaper()
    shaper.observe(OUTLOOK, S3150, now=0.0)
    shaper.resume(OUTLOOK)
    assert shaper.suspended_until(OUTLOOK, now=1.0) is None


def test_unrelated_sites_and_replies_are_untouched() -> None:
    shaper = Shaper()
    shaper.observe(GMAIL, RATE_LIMITED, now=0.0)
    shaper.observe(OUTLOOK, S3150, now=0.0)
    assert shaper.effective_rate(OTHER, 50.0, now=1.0) == 50.0
    assert shaper.effective_rate(YAHOO, 50.0, now=1.0) == 50.0
    assert shaper.suspended_until(GMAIL, now=1.0) is None
    assert set(shaper.shaped_sites(now=1.0)) == {GMAIL, OUTLOOK}
    for reply in [
        Reply(550, "5.1.1 The email account that you tried to reach does not exist. - gsmtp"),
        Reply(451, "4.3.0 Mail server temporarily rejected message. - gsmtp"),
        Reply(421, "4.7.0 Try again later, closing connection. (EHLO) - gsmtp"),
        Reply(250, "2.0.0 OK - gsmtp"),
        Reply(None, "TimeoutError: timed out"),
    ]:
        assert shaper.observe(YAHOO, reply, now=2.0) == []
    assert shaper.effective_rate(YAHOO, 50.0, now=3.0) == 50.0


def test_yahoo_and_microsoft_rate_replies_slow() -> None:
    shaper = Shaper()
    tss04 = Reply(
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
        "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    )
    assert [r.name for r in shaper.observe(YAHOO, tss04, now=0.0)] == ["yahoo-TSS04"]
    assert shaper.effective_rate(YAHOO, 8.0, now=1.0) == 4.0
    ms = Reply(451, "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited")
    assert [r.name for r in shaper.observe(OUTLOOK, ms, now=0.0)] == ["microsoft-4.7.650"]
    assert shaper.effective_rate(OUTLOOK, 8.0, now=1.0) == 4.0


def test_rules_restricted_to_a_site() -> None:
    rule = ShapingRule("google-only", "suspend", duration=10, text="slow down", site="google")
    shaper = Shaper([rule])
    assert shaper.observe("microsoft", (421, "slow down"), now=0.0) == []
    site = Site(key="google", mx_hosts=(), domains=("gmail.com",), name="google")
    assert shaper.observe(site, (421, "slow down"), now=0.0) == [rule]
    assert shaper.suspended_until("google", now=1.0) == 10.0


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="every reply"):
        ShapingRule("all", "slow", duration=10)
    with pytest.raises(ValueError, match="factor"):
        ShapingRule("zero", "slow", duration=10, factor=0.0, text="x")
    with pytest.raises(ValueError, match="duration"):
        ShapingRule("never", "suspend", duration=0, text="x")
    with pytest.raises(ValueError, match="action"):
        ShapingRule("odd", "pause", duration=1, text="x")  # type: ignore[arg-type]
