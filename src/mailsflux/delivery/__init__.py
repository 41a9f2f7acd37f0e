"""Delivery: the scheduler, SMTP sessions, MX routing, throttles, shaping, bounce classification.

A message that leaves composing reaches a :class:`Scheduler`, which queues it
by destination site (an MX host set; with a relay, one site), waits for the
throttles (:class:`LocalThrottles` in-process or :class:`RedisThrottles`
shared), and sends batches over pipelined :class:`SMTPSession` connections.
Replies are classified (:func:`classify`) and may slow a site down
(:class:`Shaper`).

Where mail for a domain goes, and which queue (site) it shares::

    resolver = MXResolver()                          # or nameservers=[("127.0.0.1", 5353)]
    route = await resolver.resolve("gmail.com")      # MX hosts by preference, with addresses
    for target in route.targets():                   # equal preferences shuffled
        connect(target.address, target.port)
    site = await resolver.site_for("googlemail.com") # same MX set as gmail.com: same site

What a reply means::

    c = classify(550, "5.1.1 The email account that you tried to reach does not exist.")
    c.category, c.permanent, c.suppress              # (Category.BAD_MAILBOX, True, True)

Slowing a site down when the receiver asks for it::

    shaper = Shaper()                                # DEFAULT_RULES: Gmail, Microsoft, Yahoo
    shaper.observe(site, Reply(421, "4.7.28 ... rate limited"), now)
    shaper.effective_rate(site, base_rate, now)      # halved for 15 minutes
    shaper.suspended_until(site, now)

Outbound TLS policy per destination domain (direct MX delivery): DANE
TLSA records the resolver validated (AD bit), else MTA-STS, decide which MX
hosts a domain's sessions may use and with what TLS::

    scheduler.tls_policy = TLSPolicies(resolver, cache=spool_dir / "mta-sts.json")
    scheduler.tls_policy.counts["example.com"]   # TLSCounts: sessions ok / failed by kind

What goes after DATA: ``data_payload(message)`` is the message dot-stuffed
(RFC 5321 4.5.2), CRLF-ended, with the lone dot, as the sessions send it;
and before it, ``envelope_commands(mail_from, rcpt_to, size)`` the
``MAIL FROM`` (``SIZE=`` when ``size`` >= 0), ``RCPT TO`` and ``DATA``
lines, or None for an address that is not ASCII or not an envelope address.

Failures to route raise :class:`PermanentRoutingError` (NXDOMAIN, null MX,
no address) or :class:`TemporaryRoutingError` (SERVFAIL, timeout), both
:class:`mailsflux.errors.DeliveryError` with ``domain`` and
``enhanced_status`` set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsflux.delivery._smtpfast import envelope as envelope_commands
from mailsflux.delivery._smtpfast import payload as data_payload
from mailsflux.delivery.bounce import (
    RULES,
    SUPPRESS,
    Category,
    Classification,
    Classifier,
    Reply,
    Rule,
    classify,
    classify_error,
    classify_result,
    find_enhanced_status,
)
from mailsflux.delivery.mx import (
    WELL_KNOWN_SITES,
    MXHost,
    MXResolver,
    PermanentRoutingError,
    Route,
    RouteKind,
    RoutingError,
    Site,
    Target,
    TemporaryRoutingError,
    normalize_domain,
    parse_smarthost,
    site_key,
)
from mailsflux.delivery.probe import probe
from mailsflux.delivery.relay import Relay
from mailsflux.delivery.scheduler import RetryPolicy, Scheduler, SiteLimits
from mailsflux.delivery.shaping import DEFAULT_RULES, Limit, Shaper, ShapingRule
from mailsflux.delivery.smtp import Outcome, SessionError, SMTPSession, TLSMode
from mailsflux.delivery.throttle import (
    ConcurrencySpec,
    Grant,
    Lease,
    LocalThrottles,
    RateSpec,
    ThrottleBackendError,
    Throttles,
)

if TYPE_CHECKING:
    from mailsflux.delivery.throttle_redis import RedisThrottles
    from mailsflux.delivery.tlspolicy import DomainTLS, TLSPolicies

__all__ = [
    "DEFAULT_RULES",
    "RULES",
    "SUPPRESS",
    "WELL_KNOWN_SITES",
    "Category",
    "Classification",
    "Classifier",
    "ConcurrencySpec",
    "DomainTLS",
    "Grant",
    "Lease",
    "Limit",
    "LocalThrottles",
    "MXHost",
    "MXResolver",
    "Outcome",
    "PermanentRoutingError",
    "RateSpec",
    "RedisThrottles",
    "Relay",
    "Reply",
    "RetryPolicy",
    "Route",
    "RouteKind",
    "RoutingError",
    "Rule",
    "SMTPSession",
    "Scheduler",
    "SessionError",
    "Shaper",
    "ShapingRule",
    "Site",
    "SiteLimits",
    "TLSMode",
    "TLSPolicies",
    "Target",
    "TemporaryRoutingError",
    "ThrottleBackendError",
    "Throttles",
    "classify",
    "classify_error",
    "classify_result",
    "data_payload",
    "envelope_commands",
    "find_enhanced_status",
    "normalize_domain",
    "parse_smarthost",
    "probe",
    "site_key",
]


def __getattr__(name: str) -> Any:
    # The Redis backend needs the redis package, and the TLS policy x509 and
    # an HTTP client: each loaded on first use, not by every send.
    if name == "RedisThrottles":
        from mailsflux.delivery.throttle_redis import RedisThrottles

        return RedisThrottles
    if name in ("DomainTLS", "TLSPolicies"):
        from mailsflux.delivery import tlspolicy

        return getattr(tlspolicy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
