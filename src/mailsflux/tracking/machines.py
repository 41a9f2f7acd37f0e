"""Is an open or a click a person's, or a machine's?

Machine events are flagged, never dropped: privacy proxies that fetch every
image on delivery (Apple Mail Privacy Protection, the Google and Yahoo image
proxies), link scanners of mail gateways and previewers that follow every
link, ``HEAD`` requests, requests without a user agent, and events within
``window`` seconds of the send time carried by the token (a person does not
open and click that fast).
"""

from __future__ import annotations

import re
from typing import Final

_PROXIES: Final = re.compile(
    r"(?P<google>GoogleImageProxy|ggpht\.com)"
    r"|(?P<yahoo>YahooMailProxy)"
    r"|(?P<apple>^Mozilla/5\.0$"
    r"|^Mozilla/5\.0 \(Macintosh; Intel Mac OS X [0-9_.]+\) AppleWebKit/[0-9.]+"
    r" \(KHTML, like Gecko\)$)"
)
_SCANNERS: Final = re.compile(
    r"bot\b|bot/|crawler|spider|preview|scanner|headless|phantomjs|python-|curl/|wget/"
    r"|go-http-client|java/|okhttp|libwww|httpclient|axios|node-fetch|barracuda|proofpoint"
    r"|mimecast|symantec|trendmicro|forcepoint|fireeye|sophos|ironport|safelinks"
    r"|facebookexternalhit|skypeuripreview|whatsapp",
    re.I,
)


def classify(method: str, user_agent: str, sent_at: float, now: float, window: float) -> str:
    """``""`` for a person, else why the request looks automated."""
    if method == "HEAD":
        return "head"
    if not user_agent:
        return "no-user-agent"
    m = _PROXIES.search(user_agent)
    if m is not None:
        return f"proxy:{m.lastgroup}"
    m2 = _SCANNERS.search(user_agent)
    if m2 is not None:
        return f"scanner:{m2.group(0).lower().rstrip('/')}"
    if 0 <= now - sent_at < window:
        return "fast"
    return ""


__all__ = ["classify"]
