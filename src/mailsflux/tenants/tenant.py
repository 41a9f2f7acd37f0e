"""A tenant's settings, and the registry that answers "may T send as X"."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import msgspec

from mailsflux.dkim.keys import ascii_domain
from mailsflux.errors import ConfigError, DKIMError
from mailsflux.jobs.jobfile import DKIMSpec

#: The tenant a setup without ``[[tenants]]`` has: it may send from any domain.
DEFAULT_TENANT = "default"
#: Names go into paths and URLs as they are.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


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
