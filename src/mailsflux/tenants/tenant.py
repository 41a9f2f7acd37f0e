"""A tenant's settings, and the registry that answers "may T send as X"."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import msgspec

from mailsflux.dkim.keys import ascii_domain
from mailsflux.errors import ConfigError, DKIMError
from mailsflux.events import EVENT_TYPES
from mailsflux.jobs.jobfile import DKIMSpec, TrackingSpec

#: The tenant a setup without ``[[tenants]]`` has: it may send from any domain.
DEFAULT_TENANT = "default"
#: Names go into paths and URLs as they are.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class WebhookSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[tenants.webhooks]]``: an endpoint the tenant's events are POSTed to."""

    url: str
    #: The HMAC-SHA256 key the receiver checks ``Mailsflux-Signature`` with.
    secret: str
    #: Which event types to send (empty: all); the others are skipped.
    events: list[str] = msgspec.field(default_factory=list)
    #: Events per POST, at most.
    batch_size: int = 100
    #: What the endpoint's cursor is stored under (default: the url); keep it
    #: when the url changes to go on where the old url stopped.
    name: str = ""
    #: Seconds for one POST (connect, send, answer).
    timeout: float = 10.0
    #: Retry backoff after a failed POST: doubles from ``retry_initial`` up
    #: to ``retry_max`` seconds, each wait drawn between half and all of it.
    retry_initial: float = 1.0
    retry_max: float = 300.0
    #: Certificates to trust for an https:// url (PEM), instead of the system's.
    ca_file: str = ""
    #: Allow http:// to a host that is not loopback (events name recipients).
    allow_http: bool = False

    @property
    def key(self) -> str:
        return self.name or self.url

    def check(self, where: str) -> None:
        u = urlsplit(self.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"webhook url {self.url!r}: expected http(s)://HOST/PATH",
                              field=f"{where}.url")  # fmt: skip
        if u.scheme == "http" and not self.allow_http and not _loopback(u.hostname):
            raise ConfigError(
                f"webhook url {self.url!r} would send recipients' addresses unencrypted:"
                " use https:// (or allow_http = true on a private network)",
                field=f"{where}.url",
            )
        if len(self.secret) < 16:
            raise ConfigError("webhook secret: at least 16 characters", field=f"{where}.secret")
        for e in self.events:
            if e not in EVENT_TYPES:
                raise ConfigError(f"webhook events: unknown type {e!r}; one of "
                                  + ", ".join(EVENT_TYPES), field=f"{where}.events")  # fmt: skip
        if not 1 <= self.batch_size <= 1000:
            raise ConfigError("webhook batch_size: 1 to 1000", field=f"{where}.batch_size")
        if not (self.timeout > 0 and 0 < self.retry_initial <= self.retry_max):
            raise ConfigError("webhook timeout and retry_initial > 0, retry_max >= retry_initial",
                              field=f"{where}.retry_initial")  # fmt: skip


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Tenant(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[tenants]]``: one customer of the installation."""

    name: str
    #: Sending domains (and their subdomains); empty means any domain, which
    #: only the single-tenant setup may use.
    domains: list[str] = msgspec.field(default_factory=list)
    #: Its DKIM keys: a message is signed with the key of its From domain.
    dkim: list[DKIMSpec] = msgspec.field(default_factory=list)
    #: Where its data lives: a name in the server's ``[regions]``.
    region: str = "default"
    #: Endpoints its events are POSTed to.
    webhooks: list[WebhookSpec] = msgspec.field(default_factory=list)
    #: ``[tenants.tracking]``: the job file's tracking table for this tenant's
    #: mail: its store is the tenant's suppression list (checked before every
    #: send, hard bounces added), plus opens, clicks, unsubscribe links, VERP.
    tracking: TrackingSpec | None = None

    def owns(self, address: str) -> bool:
        """Whether the tenant may send as ``address`` (its domain or a subdomain)."""
        if not self.domains:
            return True
        domain = address.rpartition("@")[2].rstrip(">").strip()
        try:
            d = ascii_domain(domain, "sender")
        except DKIMError:
            return False
        for own in self.domains:
            o = ascii_domain(own, "domains")
            if d == o or d.endswith("." + o):
                return True
        return False


class Tenants:
    """The installation's tenants, by name."""

    def __init__(self, tenants: Iterable[Tenant] = ()) -> None:
        items = list(tenants) or [Tenant(name=DEFAULT_TENANT)]
        self._by_name: dict[str, Tenant] = {}
        for i, t in enumerate(items):
            where = f"tenants[{i}]"
            if not _NAME.fullmatch(t.name):
                raise ConfigError(
                    f"tenant name {t.name!r}: use a-z, 0-9 and -, up to 63 characters",
                    field=f"{where}.name",
                )
            if t.name in self._by_name:
                raise ConfigError(f"tenant {t.name!r} is listed twice", field=f"{where}.name")
            if len(items) > 1 and not t.domains:
                raise ConfigError(
                    f"tenant {t.name!r} has no domains: with several tenants each"
                    " must say which domains it sends from",
                    field=f"{where}.domains",
                )
            for j, d in enumerate(t.domains):
                try:
                    ascii_domain(d, "domains")
                except DKIMError as exc:
                    raise ConfigError(exc.message, field=f"{where}.domains[{j}]") from None
            _check_webhooks(t, where)
            self._by_name[t.name] = t

    def __iter__(self) -> Iterator[Tenant]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Tenant:
        t = self._by_name.get(name)
        if t is None:
            raise ConfigError(f"no tenant {name!r}", field="tenant")
        return t


def _check_webhooks(t: Tenant, where: str) -> None:
    seen: set[str] = set()
    for j, w in enumerate(t.webhooks):
        w.check(f"{where}.webhooks[{j}]")
        if w.key in seen:
            raise ConfigError(f"tenant {t.name!r}: two webhooks named {w.key!r}",
                              field=f"{where}.webhooks[{j}].name")  # fmt: skip
        seen.add(w.key)
