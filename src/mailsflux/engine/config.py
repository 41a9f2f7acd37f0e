"""The Engine's settings: one msgspec struct, built in code or read from TOML.

Delivery, DKIM and tracking settings are the job file's own tables
(:mod:`mailsflux.jobs.jobfile`), so a setting means the same in both places.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from mailsflux.errors import ConfigError
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec, DomainSpec, SpoolSpec, TrackingSpec

#: ``[delivery]``: relay or MX routing, connections, rates, TLS, retries.
Delivery = DeliverySpec
#: One ``[[dkim]]`` key: ``domain``, ``selector``, ``key`` (PEM file), ``algorithm``.
DKIMKey = DKIMSpec
#: ``[tracking]``: the tracking config file plus opens, clicks, text links.
Tracking = TrackingSpec
#: ``[delivery.domains."gmail.com"]``: per-domain or per-site overrides.
DomainLimits = DomainSpec


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an :class:`~mailsflux.Engine` sends with.

    ``dkim`` holds one key per signing domain: a message is signed with the
    key of its From domain (or a parent of it), else with the first key.
    Relative paths resolve against ``base`` (the TOML file's folder, or the
    current directory).
    """

    name: str = "engine"
    dkim: list[DKIMSpec] = msgspec.field(default_factory=list)
    delivery: DeliverySpec = msgspec.field(default_factory=DeliverySpec)
    tracking: TrackingSpec | None = None
    #: A file of addresses never to mail, on top of the tracking store's list.
    suppression: str | None = None
    #: ``[spool]``: each message handed to :meth:`Engine.send` is stored
    #: (encrypted) before it is sent; deferred ones wait there and are
    #: retried while an engine with this config runs (``mailsflux queue run``
    #: leaves them to it: it has no job file to send them with).
    spool: SpoolSpec = msgspec.field(default_factory=SpoolSpec)
    base: str = ""
    #: The TOML file this came from (set by :meth:`load`), for error messages.
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Read a TOML file with the tables above; errors name the file."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text("utf-8"))
            config = msgspec.convert(data, cls)
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", file=str(p)) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ConfigError(f"invalid config: {exc}", file=str(p)) from None
        config.base = config.base or str(p.parent)
        config.source = str(p)
        return config

    @property
    def base_dir(self) -> Path:
        """Where relative paths start."""
        return Path(self.base or ".").absolute()

    @property
    def path(self) -> Path:
        """The file errors name: the TOML file, or a stand-in in ``base``."""
        if self.source:
            return Path(self.source)
        return self.base_dir / "<engine config>"


__all__ = ["Config", "DKIMKey", "Delivery", "DomainLimits", "Tracking"]
