"""``mailsflux serve``'s settings: one TOML file, every table optional."""

from __future__ import annotations

import os
import ssl
import tomllib
from pathlib import Path

import msgspec

from mailsflux._tls import server_context
from mailsflux.errors import ConfigError
from mailsflux.gateway import RetentionSpec
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec
from mailsflux.letters.jobfile import CarrierSpec
from mailsflux.submission import SubmissionSpec
from mailsflux.tenants import DEFAULT_TENANT, Tenant, Tenants, WebhookSpec


class HTTPSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[http]``: the HTTP API."""

    #: ``HOST:PORT`` (port 0: any free port, printed at start).
    listen: str = "127.0.0.1:8025"
    #: Largest request body of POST /v1/messages (bytes).
    max_body: int = 10 << 20
    #: Largest request body of POST /v1/jobs with JSON rows (bytes).
    max_job_body: int = 64 << 20
    #: Largest recipients CSV uploaded to POST /v1/jobs (bytes; to disk as it comes).
    max_upload: int = 1 << 30
    #: One JSON line per request on stderr.
    access_log: bool = True
    #: Serve HTTPS (TLS 1.2 minimum, 1.3 preferred) with this certificate
    #: chain and key (PEM; relative to the config's folder); empty: plain HTTP
    #: (behind a TLS proxy).
    tls_cert: str = ""
    tls_key: str = ""
    #: ``HOST:PORT`` for ``/metrics`` (every tenant's numbers: keep it private);
    #: empty: no metrics endpoint.
    metrics_listen: str = ""


class BouncesSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[bounces]``: the SMTP listener for the bounce domain (as ``bounces listen``)."""

    listen: str = "127.0.0.1:2525"
    #: The tracking config: its store gets suppressions, its keys open VERP tokens.
    tracking: str = ""
    #: The VERP return-path domain (``bounces+TOKEN@domain``); needs ``tracking``.
    bounce_domain: str = ""
    #: Also accepted: ARF feedback-loop addresses.
    feedback_addresses: list[str] = msgspec.field(default_factory=list)
    #: JSON lines of bounce events; reports that cannot be parsed.
    events: str = "bounce-events.jsonl"
    quarantine: str = "quarantine"
    #: Also append suppressed addresses to this list file.
    suppression_list: str = ""


class RedisSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[redis]``: accepted messages and API jobs go into Redis for
    ``mailsflux worker`` processes (on any host) instead of being sent here."""

    #: ``redis://``, ``rediss://``, ``redis+cluster://`` or ``redis+sentinel://``.
    url: str
    #: Key prefix, as ``worker --prefix``.
    prefix: str = "mf"
    #: The spool key file the workers hold too (default: the default spool's ``keys``).
    key_file: str | None = None


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What ``mailsflux serve --config FILE`` runs."""

    #: Keys, and tenants' data unless their region says otherwise. Default:
    #: $MAILSFLUX_HOME, else $XDG_STATE_HOME/mailsflux/server.
    data_dir: str = ""
    http: HTTPSpec | None = None
    bounces: BouncesSpec | None = None
    #: ``[submission]``: SMTP submission (STARTTLS on 587, implicit TLS on 465).
    submission: SubmissionSpec | None = None
    delivery: DeliverySpec = msgspec.field(default_factory=DeliverySpec)
    #: The DKIM keys of the one tenant a setup without ``[[tenants]]`` has.
    dkim: list[DKIMSpec] = msgspec.field(default_factory=list)
    tenants: list[Tenant] = msgspec.field(default_factory=list)
    #: The webhooks of the one tenant a setup without ``[[tenants]]`` has.
    webhooks: list[WebhookSpec] = msgspec.field(default_factory=list)
    #: Region name -> the directory that region's tenants' data lives in.
    regions: dict[str, str] = msgspec.field(default_factory=dict)
    #: fsync every spool commit (survives power loss, not only a crash).
    fsync: bool = False
    #: How long personal data is kept (``mailsflux retention run``; serve sweeps too).
    retention: RetentionSpec = msgspec.field(default_factory=RetentionSpec)
    #: ``[letters]``: the carrier ``POST /v1/letters`` hands letters to
    #: (kind, dir or url and api_key_env, mail_class, color); none: no letters.
    letters: CarrierSpec | None = None
    #: ``[redis]``: send through Redis workers (see "Scaling out on Redis").
    redis: RedisSpec | None = None
    base: str = ""
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> ServerConfig:
        p = Path(path)
        try:
            config = msgspec.convert(tomllib.loads(p.read_text("utf-8")), cls)
        except OSError as exc:
            raise ConfigError(f"cannot read config: {exc.strerror}", file=str(p)) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ConfigError(f"invalid config: {exc}", file=str(p)) from None
        config.base = str(p.parent.absolute())
        config.source = str(p)
        return config

    @classmethod
    def from_options(cls, config: str | None, data_dir: str | None) -> ServerConfig:
        """What a command's ``--config FILE`` and ``--data-dir DIR`` give (defaults without)."""
        out = cls.load(config) if config else cls()
        if data_dir:
            out.data_dir = str(data_dir)
        return out

    def resolve(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else Path(self.base or ".").absolute() / p

    @property
    def redis_options(self) -> dict[str, object]:
        """What each tenant's Engine gets for ``[redis]`` (nothing without it)."""
        r = self.redis
        if r is None:
            return {}
        key_file = str(self.resolve(r.key_file)) if r.key_file else None
        return {"redis": r.url, "redis_prefix": r.prefix, "key_file": key_file}

    @property
    def data_path(self) -> Path:
        if self.data_dir:
            return self.resolve(self.data_dir)
        home = os.environ.get("MAILSFLUX_HOME")
        if home:
            return Path(home)
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "mailsflux" / "server"

    def events_files(self) -> list[Path]:
        """The JSON-lines files ``serve`` writes itself (swept like events):
        the bounce listener's events and the privacy audit."""
        out = [self.data_path / "privacy-audit.jsonl"]
        if self.bounces is not None and self.bounces.events:
            out.append(self.resolve(self.bounces.events))
        return out

    def quarantine_dir(self) -> Path | None:
        """The bounce listener's quarantine (swept like addresses)."""
        b = self.bounces
        return self.resolve(b.quarantine) if b is not None and b.quarantine else None

    def check(self) -> None:
        """Every setting that can be wrong, checked before anything starts;
        errors name the config file."""
        try:
            if self.http is not None:
                parse_listen(self.http.listen, "http.listen")
                if self.http.metrics_listen:
                    parse_listen(self.http.metrics_listen, "http.metrics_listen")
                if bool(self.http.tls_cert) != bool(self.http.tls_key):
                    raise ConfigError(
                        "http.tls_cert and http.tls_key go together", field="http.tls_cert"
                    )
                if self.http.tls_cert:
                    self.http_tls()  # a bad certificate or key: one line, at start
                for name in ("max_body", "max_job_body", "max_upload"):
                    if getattr(self.http, name) <= 0:
                        raise ConfigError(f"http.{name} must be above 0", field=f"http.{name}")
            if self.bounces is not None:
                parse_listen(self.bounces.listen, "bounces.listen")
                if not self.bounces.bounce_domain and not self.bounces.feedback_addresses:
                    raise ConfigError(
                        "[bounces] needs bounce_domain (with tracking) or feedback_addresses",
                        field="bounces",
                    )
                if self.bounces.bounce_domain and not self.bounces.tracking:
                    raise ConfigError(
                        "bounces.bounce_domain needs bounces.tracking (its keys open VERP tokens)",
                        field="bounces.tracking",
                    )
            if self.delivery.stop_grace < 0:
                raise ConfigError("delivery.stop_grace cannot be negative", field="stop_grace")
            if self.tenants and self.webhooks:
                raise ConfigError(
                    "[[webhooks]] is for a setup without [[tenants]]:"
                    " give each tenant its own [[tenants.webhooks]]",
                    field="webhooks",
                )
            tenants = self.tenant_list()
            if self.redis is not None and any(t.region != "default" for t in tenants):
                # One Redis holds every tenant's waiting messages: a region's
                # would leave the region's location (the residency promise).
                raise ConfigError(
                    "[redis] beside tenants in [regions] would keep a region's waiting"
                    " messages outside it: run one serve, with its own Redis, per region",
                    field="redis",
                )
            owners: dict[str, str] = {}
            for t in tenants:
                if t.region != "default" and t.region not in self.regions:
                    raise ConfigError(
                        f"tenant {t.name!r}: region {t.region!r} is not in [regions]",
                        field="tenants.region",
                    )
                if not t.dkim:
                    raise ConfigError(
                        f"tenant {t.name!r} has no DKIM key: every message is signed"
                        + (" (give [[dkim]])" if len(tenants) == 1 and not self.tenants else ""),
                        field="tenants.dkim",
                    )
                for k in t.dkim:
                    if not k.generate and not Path(k.key).exists():
                        raise ConfigError(
                            f"tenant {t.name!r}: DKIM key file {k.key} does not exist"
                            " (generate = true creates it)",
                            field="tenants.dkim.key",
                        )
                for d in t.domains:
                    d = d.lower().rstrip(".")
                    for other, owner in owners.items():
                        if owner != t.name and (
                            d == other or d.endswith("." + other) or other.endswith("." + d)
                        ):
                            raise ConfigError(
                                f"tenants {owner!r} and {t.name!r} both claim {d} (or a"
                                f" parent of it, {other}): each domain has one tenant",
                                field="tenants.domains",
                            )
                    owners[d] = t.name
        except ConfigError as exc:
            if exc.file is None and self.source:
                exc.file = self.source
            raise

    def http_tls(self) -> ssl.SSLContext | None:
        """The HTTP API's TLS context (our floor: TLS 1.2), or None for plain HTTP."""
        if self.http is None or not self.http.tls_cert:
            return None
        ctx = server_context()
        cert, key = self.resolve(self.http.tls_cert), self.resolve(self.http.tls_key)
        try:
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"http: cannot load the certificate and key ({key}): {reason}",
                field="http.tls_cert",
            ) from None
        return ctx

    def tenant_list(self) -> Tenants:
        """The tenants, with key paths resolved against the config's folder."""
        if not self.tenants:
            items = [
                Tenant(name=DEFAULT_TENANT, dkim=list(self.dkim), webhooks=list(self.webhooks))
            ]
        else:
            items = list(self.tenants)
        out = []
        for t in items:
            keys = [msgspec.structs.replace(k, key=str(self.resolve(k.key))) for k in t.dkim]
            hooks = [
                msgspec.structs.replace(
                    w, ca_file=str(self.resolve(w.ca_file)) if w.ca_file else ""
                )
                for w in t.webhooks
            ]
            tracking = t.tracking
            if tracking is not None:
                tracking = msgspec.structs.replace(
                    tracking, config=str(self.resolve(tracking.config))
                )
            out.append(msgspec.structs.replace(t, dkim=keys, webhooks=hooks, tracking=tracking))
        return Tenants(out)


def parse_listen(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{what}: expected HOST:PORT, got {text!r}", field=what)
    return host.strip("[]") or "127.0.0.1", int(port)
