"""Reply-driven shaping: a receiver says "slow down", the site slows down.

A :class:`Shaper` holds a small state per site (queue) and a table of
:class:`ShapingRule`. The scheduler feeds it every non-2xx reply with
:meth:`Shaper.observe` and asks, before sending to a site,
:meth:`Shaper.suspended_until` and :meth:`Shaper.effective_rate`.

- ``slow``: the site's rate is multiplied by ``factor`` for ``duration``
  seconds. Each rule counts once per site (a storm of the same reply extends
  the window, it does not drive the rate to zero); different rules multiply.
  The factor never goes below ``min_factor``.
- ``suspend``: nothing is sent to the site for ``duration`` seconds.

Both end by themselves: the state is a set of deadlines, compared with the
``now`` the caller passes (a monotonic clock; tests inject their own), so no
timers run and nothing needs restoring.

:data:`DEFAULT_RULES` holds the well-known provider replies, each with the
place its text comes from. Rules are data: pass your own list, or
``(*DEFAULT_RULES, ShapingRule(...))``.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

import msgspec

from mailsflux.delivery.bounce import Reply, find_enhanced_status
from mailsflux.types import DeliveryResult

__all__ = [
    "DEFAULT_RULES",
    "Limit",
    "Shaper",
    "ShapingRule",
]

Action = Literal["slow", "suspend"]
_LEADING_CODE = re.compile(r"^\s*([1-5]\d\d)(?:[ -]|$)")


class ShapingRule(msgspec.Struct, frozen=True):
    """When a reply matches, slow the site down or suspend it for a while.

    ``code`` and ``enhanced`` are regular expressions matched against the
    whole basic code (``"421"``) and enhanced status (``"4.7.28"``, also
    found in the text); ``text`` is searched case-insensitively; ``site``
    (fnmatch pattern on the site key, e.g. ``"google"`` or ``"mx:*google*"``)
    restricts the rule to some sites. Every pattern given must match; at
    least one of code/enhanced/text must be given.
    """

    name: str
    action: Action
    #: Seconds the slowdown or suspension lasts after the last matching reply.
    duration: float
    #: For ``slow``: the rate is multiplied by this (0 < factor <= 1).
    factor: float = 0.5
    code: str | None = None
    enhanced: str | None = None
    text: str | None = None
    site: str | None = None
    #: Where the reply text comes from (documentation).
    source: str = ""
    #: A real reply this rule must match (the tests check it).
    example: tuple[int | None, str] = (None, "")

    def __post_init__(self) -> None:
        if self.code is None and self.enhanced is None and self.text is None:
            raise ValueError(f"shaping rule {self.name!r} matches every reply")
        if self.action not in ("slow", "suspend"):
            raise ValueError(f"shaping rule {self.name!r}: unknown action {self.action!r}")
        if self.action == "slow" and not 0 < self.factor <= 1:
            raise ValueError(f"shaping rule {self.name!r}: factor must be in (0, 1]")
        if not self.duration > 0:
            raise ValueError(f"shaping rule {self.name!r}: duration must be > 0")


#: The replies of the large providers that mean "send slower" or "stop".
DEFAULT_RULES: tuple[ShapingRule, ...] = (
    # Google: "421-4.7.28 ... Our system has detected an unusual rate of
    # unsolicited mail originating from your IP address. To protect our users
    # from spam, mail sent from your IP address has been temporarily rate
    # limited." Google Workspace Admin Help, "SMTP error reference"
    # (support.google.com/a/answer/3726730).
    ShapingRule(
        name="gmail-4.7.28",
        action="slow",
        factor=0.5,
        duration=15 * 60,
        code=r"4\d\d",
        enhanced=r"4\.7\.28",
        source="Google Workspace SMTP error reference (support.google.com/a/answer/3726730)",
        example=(
            421,
            "4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of unsolicited "
            "mail originating from your IP address. To protect our users from spam, mail "
            "sent from your IP address has been temporarily rate limited. - gsmtp",
        ),
    ),
    # Google, same reference: "421-4.7.0 ... very low reputation of the
    # sending IP address ... has been temporarily rate limited". 4.7.0 alone
    # means little, so the text must speak of a rate.
    ShapingRule(
        name="gmail-4.7.0-rate",
        action="slow",
        factor=0.5,
        duration=15 * 60,
        code=r"421",
        enhanced=r"4\.7\.0",
        text=r"rate.?limit|unusual rate",
        source="Google Workspace SMTP error reference (support.google.com/a/answer/3726730)",
        example=(
            421,
            "4.7.0 [192.0.2.1 15] Our system has detected that this message is suspicious "
            "due to the very low reputation of the sending IP address. To protect our users "
            "from spam, mail sent from your IP address has been temporarily rate limited. "
            "- gsmtp",
        ),
    ),
    # Microsoft (Outlook.com / Exchange Online): "451 4.7.650 The mail server
    # [IP] has been temporarily rate limited due to IP reputation." Microsoft
    # Learn, "Fix email delivery issues for error codes 451 4.7.500-699
    # (ASxxx) in Exchange Online".
    ShapingRule(
        name="microsoft-4.7.650",
        action="slow",
        factor=0.5,
        duration=30 * 60,
        enhanced=r"4\.7\.650",
        source="Microsoft Learn: 451 4.7.500-699 (ASxxx) in Exchange Online",
        example=(
            451,
            "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due "
            "to IP reputation. For e-mail delivery information, see "
            "https://postmaster.live.com (S775)",
        ),
    ),
    # Microsoft Outlook.com: "550 5.7.1 Unfortunately, messages from [IP]
    # weren't sent. Please contact your Internet service provider since part
    # of their network is on our block list (S3150)." (S3140 is the same
    # block list message.) Outlook.com postmaster troubleshooting page
    # (mail.live.com/mail/troubleshooting.aspx, sendersupport.olc.protection.outlook.com).
    # Retrying at once cannot help: stop the site for an hour.
    ShapingRule(
        name="microsoft-S3150",
        action="suspend",
        duration=60 * 60,
        text=r"\(S31[45]0\)|\bS31[45]0\b",
        source="Outlook.com postmaster troubleshooting (block list S3140/S3150)",
        example=(
            550,
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact "
            "your Internet service provider since part of their network is on our block "
            "list (S3150). You can also refer your provider to "
            "http://mail.live.com/mail/troubleshooting.aspx#errors.",
        ),
    ),
    # Yahoo/AOL: "421 4.7.0 [TSS04] Messages from x.x.x.x temporarily deferred
    # due to unexpected volume or user complaints". Yahoo Sender Hub, "SMTP
    # error codes" (senders.yahooinc.com/smtp-error-codes).
    ShapingRule(
        name="yahoo-TSS04",
        action="slow",
        factor=0.5,
        duration=30 * 60,
        code=r"4\d\d",
        text=r"\bTSS04\b",
        source="Yahoo Sender Hub SMTP error codes (senders.yahooinc.com/smtp-error-codes)",
        example=(
            421,
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
            "unexpected volume or user complaints - 4.16.55.1; see "
            "https://postmaster.yahooinc.com/error-codes",
        ),
    ),
)


class Limit(NamedTuple):
    """One active slowdown or suspension of a site."""

    rule: str
    action: Action
    factor: float
    until: float


class _Compiled(NamedTuple):
    rule: ShapingRule
    code: re.Pattern[str] | None
    enhanced: re.Pattern[str] | None
    text: re.Pattern[str] | None


def _key(site: object) -> str:
    key = getattr(site, "key", site)
    return key if isinstance(key, str) else str(key)


class Shaper:
    """Per-site slowdowns and suspensions driven by replies.

    ``site`` arguments are site keys, or anything with a ``key`` attribute
    (:class:`mailsflux.delivery.mx.Site`). ``now`` is the caller's monotonic time;
    omitted, ``clock()`` is used.
    """

    def __init__(
        self,
        rules: Iterable[ShapingRule] = DEFAULT_RULES,
        *,
        min_factor: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = tuple(rules)
        self.min_factor = min_factor
        self.clock = clock
        self._compiled = tuple(
            _Compiled(
                r,
                re.compile(r.code) if r.code is not None else None,
                re.compile(r.enhanced) if r.enhanced is not None else None,
                re.compile(r.text, re.IGNORECASE) if r.text is not None else None,
            )
            for r in self.rules
        )
        # site key -> rule name -> Limit
        self._limits: dict[str, dict[str, Limit]] = {}

    def matching(
        self, site: object, reply: Reply | DeliveryResult | tuple[int | None, str]
    ) -> list[ShapingRule]:
        """The rules a reply from ``site`` matches (without applying them)."""
        code, text, enhanced = _reply_parts(reply)
        key = _key(site)
        code_text = f"{code:03d}" if code is not None else None
        out: list[ShapingRule] = []
        for c in self._compiled:
            rule = c.rule
            if rule.site is not None and not fnmatch.fnmatchcase(key, rule.site):
                continue
            if c.code is not None and (code_text is None or not c.code.fullmatch(code_text)):
                continue
            if c.enhanced is not None and (enhanced is None or not c.enhanced.fullmatch(enhanced)):
                continue
            if c.text is not None and not c.text.search(text):
                continue
            out.append(rule)
        return out

    def observe(
        self,
        site: object,
        reply: Reply | DeliveryResult | tuple[int | None, str],
        now: float | None = None,
    ) -> list[ShapingRule]:
        """Apply every rule the reply matches to ``site``; returns those rules."""
        now = self.clock() if now is None else now
        matched = self.matching(site, reply)
        if not matched:
            return matched
        limits = self._limits.setdefault(_key(site), {})
        for rule in matched:
            until = now + rule.duration
            old = limits.get(rule.name)
            if old is not None and old.until > now:
                until = max(until, old.until)
            factor = rule.factor if rule.action == "slow" else 0.0
            limits[rule.name] = Limit(rule.name, rule.action, factor, until)
        return matched

    def effective_rate(self, site: object, base_rate: float, now: float | None = None) -> float:
        """``base_rate`` times every active slowdown (0.0 while suspended)."""
        now = self.clock() if now is None else now
        active = self.active(site, now)
        if any(limit.action == "suspend" for limit in active):
            return 0.0
        factor = 1.0
        for limit in active:
            factor *= limit.factor
        return base_rate * max(factor, self.min_factor)

    def suspended_until(self, site: object, now: float | None = None) -> float | None:
        """When the site's suspension ends, or None when it is not suspended."""
        now = self.clock() if now is None else now
        ends = [limit.until for limit in self.active(site, now) if limit.action == "suspend"]
        return max(ends) if ends else None

    def active(self, site: object, now: float | None = None) -> tuple[Limit, ...]:
        """The site's limits still in force at ``now`` (expired ones are dropped)."""
        now = self.clock() if now is None else now
        key = _key(site)
        limits = self._limits.get(key)
        if not limits:
            return ()
        for name in [n for n, limit in limits.items() if limit.until <= now]:
            del limits[name]
        if not limits:
            del self._limits[key]
            return ()
        return tuple(limits.values())

    def shaped_sites(self, now: float | None = None) -> dict[str, tuple[Limit, ...]]:
        """Every site with a limit in force, for status displays."""
        now = self.clock() if now is None else now
        out = {key: self.active(key, now) for key in list(self._limits)}
        return {key: limits for key, limits in out.items() if limits}

    def resume(self, site: object) -> None:
        """Lift every limit of ``site`` now (an operator's override)."""
        self._limits.pop(_key(site), None)


def _reply_parts(
    reply: Reply | DeliveryResult | tuple[int | None, str],
) -> tuple[int | None, str, str | None]:
    if isinstance(reply, DeliveryResult):
        code, text, enhanced = reply.code, reply.reply, reply.enhanced_status
    elif isinstance(reply, Reply):
        code, text, enhanced = reply.code, reply.text, reply.enhanced_status
    else:
        code, text = reply[0], reply[1]
        enhanced = None
    text = text or ""
    if code is None:
        m = _LEADING_CODE.match(text)
        code = int(m.group(1)) if m else None
    if not enhanced:
        enhanced = find_enhanced_status(text)
    return code, text, enhanced
