"""Routing for direct delivery: MX lookup and sites, reply classification, shaping.

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

Failures to route raise :class:`PermanentRoutingError` (NXDOMAIN, null MX,
no address) or :class:`TemporaryRoutingError` (SERVFAIL, timeout), both
:class:`mailsflux.errors.DeliveryError` with ``domain`` and
``enhanced_status`` set.
"""

from __future__ import annotations

from mailsflux._bounce import (
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
from mailsflux._mx import (
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
from mailsflux._shaping import DEFAULT_RULES, Limit, Shaper, ShapingRule

__all__ = [
    "DEFAULT_RULES",
    "RULES",
    "SUPPRESS",
    "WELL_KNOWN_SITES",
    "Category",
    "Classification",
    "Classifier",
    "Limit",
    "MXHost",
    "MXResolver",
    "PermanentRoutingError",
    "Reply",
    "Route",
    "RouteKind",
    "RoutingError",
    "Rule",
    "Shaper",
    "ShapingRule",
    "Site",
    "Target",
    "TemporaryRoutingError",
    "classify",
    "classify_error",
    "classify_result",
    "find_enhanced_status",
    "normalize_domain",
    "parse_smarthost",
    "site_key",
]
