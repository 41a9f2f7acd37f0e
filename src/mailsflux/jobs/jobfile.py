"""The job file (TOML): what to send, to whom, signed how, delivered where.

Paths in a job file are relative to the file. Every error names the job file
and, where the fault is in the file, its line.
"""

from __future__ import annotations

import re
import ssl
import tomllib
from pathlib import Path
from typing import Literal, TypeVar

import msgspec

from mailsflux._tls import client_context
from mailsflux.delivery.relay import Relay
from mailsflux.errors import JobFileError


class MessageSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sender: str = msgspec.field(name="from")
    subject: str
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    #: What a variable absent from a row does in the bodies: "error" skips
    #: the row, "empty" renders nothing. Subject and From are always strict.
    missing_variables: Literal["error", "empty"] = "error"
    #: Files attached to every message (multipart/mixed), relative to the job.
    attachments: list[str] = msgspec.field(default_factory=list)
    #: Images the HTML shows as ``<img src="cid:NAME">``: NAME -> file
    #: (multipart/related beside the HTML part, RFC 2387).
    inline_images: dict[str, str] = msgspec.field(default_factory=dict)
    #: List-Unsubscribe template (RFC 2369), e.g.
    #: ``<mailto:unsub@x.example?subject={{email}}>, <https://x.example/u?e={{email}}>``;
    #: variables are percent-encoded. An https URI adds List-Unsubscribe-Post
    #: (RFC 8058 one-click).
    list_unsubscribe: str | None = None
    #: Mustache partials for the bodies: ``{ footer = "footer.html" }`` makes
    #: ``{{> footer}}`` that file (relative to the job).
    partials: dict[str, str] = msgspec.field(default_factory=dict)
    #: A directory of partials: ``{{> footer}}`` is ``footer`` plus the
    #: body's own suffix (``footer.html`` in the HTML body, ``footer.txt`` in
    #: the text body), else ``footer.mustache``, else ``footer``. The
    #: ``partials`` table wins over it.
    partials_dir: str | None = None


class RecipientsSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    file: str
    email_column: str = "email"
    name_column: str = "name"
    #: Addresses never to mail (one per line), on top of the tracking store's
    #: unsubscribes and hard bounces.
    suppression: str | None = None


class DKIMSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    domain: str
    selector: str
    key: str
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"
    #: Create the key (and its DNS record beside it) when the file is missing.
    generate: bool = False
    bits: int = 2048


class DomainSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Overrides for one domain or site (``[delivery.domains."gmail.com"]``)."""

    rate: float | None = None
    burst: int | None = None
    connections: int | None = None
    messages_per_connection: int | None = None
    tls: Literal["opportunistic", "required", "none"] | None = None
    #: The spool's retry schedule for this domain (see [delivery]).
    queue_initial: float | None = None
    queue_max: float | None = None
    max_age: float | None = None


class DeliverySpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: A relay (smarthost) for all mail; without it, mail goes to each
    #: domain's MX hosts.
    relay: str | None = None
    #: Per site (a relay is one site): sessions, messages per session, rate.
    connections: int = 4
    messages_per_connection: int = 1000
    rate: float = 0.0  # messages per second per site; 0 = unlimited
    burst: int = 32
    #: The whole job's rate (campaign limit); the lower limit wins.
    job_rate: float = 0.0
    #: TLS toward MX hosts: STARTTLS when offered (falling back to plain text
    #: when the handshake fails), "required" (certificate checked), "none".
    tls: Literal["opportunistic", "required", "none"] = "opportunistic"
    #: A PEM file of CA certificates trusted, beside the system's, wherever a
    #: certificate is checked (a relay with credentials, tls = "required"):
    #: Postfix's smtp_tls_CAfile.
    tls_ca: str | None = None
    #: The name said in EHLO (RFC 5321 4.1.1.1); default: this host's FQDN.
    ehlo_name: str | None = None
    timeout: float = 30.0
    #: How long to wait for the reply to the end of a message (RFC 5321
    #: 4.5.3.2.6: 10 minutes; servers may scan the message first).
    data_timeout: float = 600.0
    #: Quick attempts per message within the run (4xx, dropped connections),
    #: ``retry_initial`` apart and doubling up to ``retry_max``; after the last
    #: a message is deferred into the spool.
    attempts: int = 3
    retry_initial: float = 5.0
    retry_max: float = 300.0
    #: The spool's schedule (Postfix's minimal/maximal_backoff_time): the
    #: wait after a message is deferred into the spool, doubling up to
    #: ``queue_max``, until ``max_age`` from its first attempt (Postfix's
    #: maximal_queue_lifetime, 5 days), when it bounces as expired.
    queue_initial: float = 300.0
    queue_max: float = 4000.0
    max_age: float = 5 * 86_400.0
    #: Seconds a stopped job (SIGINT, SIGTERM) gives its batches in flight to
    #: finish before it drops them; a second signal stops at once.
    stop_grace: float = 5.0
    #: "local" (in-process throttles) or a redis:// URL shared by every
    #: process and host sending together.
    throttle: str = "local"
    #: Seconds a shared connection lease lives unless renewed (a third of it
    #: apart): what a dead worker's connections stay taken for.
    lease_ttl: float = 120.0
    #: DNS servers for MX lookups and the authentication check ("ip" or
    #: "ip:port"); default: the system's.
    #: DANE trusts what they say is DNSSEC-validated (the AD bit): name a
    #: validating resolver on a path you trust (e.g. unbound on localhost).
    nameservers: list[str] = msgspec.field(default_factory=list)
    #: Believe the AD bit of nameservers that are not on loopback (the bit
    #: crosses the network unprotected): only over a path you trust.
    trust_remote_ad: bool = False
    #: Direct MX delivery only (a relay has its own TLS settings): honour
    #: MTA-STS policies (RFC 8461; cached in the spool directory's
    #: mta-sts.json) and DANE TLSA records (RFC 7672).
    mta_sts: bool = True
    dane: bool = True
    mx_port: int = 25
    #: SPF, DKIM and DMARC checked in DNS before a job starts: "enforce"
    #: refuses a job whose records fail, "warn" reports and sends, "off"
    #: skips the lookups. Reserved From domains (example.com, *.test) are exempt.
    authentication: Literal["enforce", "warn", "off"] = "enforce"
    #: This host's public address as receivers see it, for the SPF check when
    #: no public relay is used (direct MX delivery, or a relay on this host).
    source_ip: str | None = None
    #: Worker processes, each with its own uvloop (0 = one per core). With
    #: "local" throttles each holds its share of every limit.
    workers: int = 1
    domains: dict[str, DomainSpec] = msgspec.field(default_factory=dict)


class TrackingSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: The tracking config (keys, base URL, event store) shared with
    #: ``mailsflux track-server``; relative to the job file.
    config: str
    #: Create the config on first use, with fresh keys, for ``base_url``.
    generate: bool = False
    base_url: str | None = None
    opens: bool = True
    clicks: bool = True
    #: Also rewrite the URLs of the text part.
    text_links: bool = False
    #: Adds a ``mailto:`` alternative to List-Unsubscribe.
    unsubscribe_mailto: str | None = None
    #: VERP: each message's envelope sender (MAIL FROM, the Return-Path the
    #: receiver adds) becomes ``bounces+TOKEN@bounce_domain``, the token
    #: sealing message id, recipient and job with the tracking keys, so a
    #: bounce names its message; the From header stays the sender.
    bounce_domain: str | None = None


class SpoolSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where the job's states and deferred messages are kept (``[spool]``)."""

    #: Off: no resume, and deferred messages are reported and dropped.
    enabled: bool = True
    #: Default: $MAILSFLUX_SPOOL, else $XDG_STATE_HOME/mailsflux/spool.
    dir: str | None = None
    #: The AES-256 key file (0600); default: ``keys`` in the spool directory.
    key_file: str | None = None
    #: fsync every commit (survives power loss, not only a crash; slower).
    fsync: bool = False
    #: Seconds a message taken from the spool to be tried is left alone by
    #: other runners; after a crash it is tried again once this has passed.
    claim: float = 900.0


class JobSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str = ""
    message: MessageSpec
    recipients: RecipientsSpec
    dkim: DKIMSpec
    delivery: DeliverySpec = msgspec.field(default_factory=DeliverySpec)
    #: Open and click tracking, one-click unsubscribe and suppression.
    tracking: TrackingSpec | None = None
    spool: SpoolSpec = msgspec.field(default_factory=SpoolSpec)


class Job:
    """A loaded job: the spec plus resolved paths."""

    def __init__(self, spec: JobSpec, path: Path) -> None:
        self.spec = spec
        self.path = path
        self.base = path.parent
        self.name = spec.name or path.stem

    def resolve(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else self.base / p

    @property
    def html_path(self) -> Path | None:
        return self.resolve(self.spec.message.html) if self.spec.message.html else None

    @property
    def text_path(self) -> Path | None:
        return self.resolve(self.spec.message.text) if self.spec.message.text else None

    @property
    def recipients_path(self) -> Path:
        return self.resolve(self.spec.recipients.file)

    @property
    def tracking_path(self) -> Path | None:
        t = self.spec.tracking
        return self.resolve(t.config) if t is not None else None

    @property
    def key_path(self) -> Path:
        return self.resolve(self.spec.dkim.key)

    def tls_context(self) -> ssl.SSLContext | None:
        """The context checking certificates, trusting ``tls_ca`` too; None without it."""
        ca = self.spec.delivery.tls_ca
        if ca is None:
            return None
        # create_default_context(cafile=...) would trust that file alone: the
        # system's store is loaded first and the private CA added to it.
        ctx = client_context()
        try:
            ctx.load_verify_locations(cafile=str(self.resolve(ca)))
            return ctx
        except (OSError, ssl.SSLError) as exc:
            raise JobFileError(
                f"field delivery.tls_ca: cannot load CA certificates from"
                f" {self.resolve(ca)}: {getattr(exc, 'strerror', None) or exc}",
                file=str(self.path),
                line=_locate(self.path.read_text("utf-8"), ["delivery", "tls_ca"]),
                field="delivery.tls_ca",
            ) from None

    def relay(self) -> Relay | None:
        if self.spec.delivery.relay is None:
            return None
        try:
            return Relay.parse(self.spec.delivery.relay)
        except ValueError as exc:
            raise JobFileError(
                str(exc),
                file=str(self.path),
                line=_locate(self.path.read_text("utf-8"), ["delivery", "relay"]),
                field="delivery.relay",
            ) from None


#: What EHLO may carry (RFC 5321 4.1.1.1): a domain or an address literal.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_EHLO = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[A-Za-z0-9:.\-]+\]")


def check_ehlo_name(name: str) -> str:
    """``name`` if it may follow EHLO; else ValueError saying why."""
    if len(name) > 255 or not _EHLO.fullmatch(name):
        raise ValueError(
            f"EHLO name {name!r} is not a host name or address literal (RFC 5321 4.1.1.1)"
        )
    return name


def is_fqdn(name: str) -> bool:
    """Would a receiver that wants a fully qualified EHLO name accept ``name``?"""
    return name.startswith("[") or ("." in name and name.lower() != "localhost")


_PATH_RE = re.compile(r"at `\$((?:\.[A-Za-z0-9_\-]+|\[\d+\])*)`")


def _locate(text: str, path: list[str]) -> int | None:
    """Best-effort line of ``path`` (table names then a key) in TOML ``text``."""
    if not path:
        return None
    table, key = path[:-1], path[-1]
    want = ".".join(table)
    current = ""
    table_line: int | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]\s*(#.*)?", line)
        if m:
            current = m.group(1).replace(" ", "")
            if current == ".".join(path):
                return n
            if current == want:
                table_line = n
            continue
        if current == want and re.match(rf'"?{re.escape(key)}"?\s*=', line):
            return n
    return table_line


#: Other job files (letters) name their faulty lines the same way.
locate = _locate

_Spec = TypeVar("_Spec")


def read_spec(p: Path, spec_type: type[_Spec]) -> tuple[_Spec, str]:
    """A TOML job file as ``spec_type``, and its text (to locate later
    faults); :class:`JobFileError` names the file, the line and the field.
    Shared by every kind of job file (email, letters)."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise JobFileError("job file not found", file=str(p)) from None
    except OSError as exc:
        raise JobFileError(f"cannot read job file: {exc.strerror}", file=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobFileError(
            "job file is not UTF-8", file=str(p), line=raw[: exc.start].count(b"\n") + 1
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise JobFileError(
            f"invalid TOML: {msg}",
            file=str(p),
            line=int(m.group(1)) if m else None,
            column=int(m.group(2)) if m else None,
        ) from None
    try:
        return msgspec.convert(data, spec_type), text
    except msgspec.ValidationError as exc:
        text_err = str(exc)
        m = _PATH_RE.search(text_err)
        keys = [k for k in (m.group(1).split(".") if m else []) if k and not k.startswith("[")]
        missing = re.search(r"missing required field `([^`]+)`", text_err)
        line: int | None
        if missing:
            field = ".".join([*keys, missing.group(1)])
            line = _locate(text, keys) if keys else None
        else:
            unknown = re.search(r"unknown field `([^`]+)`", text_err)
            if unknown:
                keys = [*keys, unknown.group(1)]
            field = ".".join(keys)
            line = _locate(text, keys)
        msg = _PATH_RE.sub("", text_err).rstrip(" -")
        where = f"field {field}: " if field else ""
        raise JobFileError(where + msg, file=str(p), line=line, field=field or None) from None


def load_job(path: str | Path) -> Job:
    """Read and check a job file; raise :class:`JobFileError` naming file and line."""
    p = Path(path)
    spec, text = read_spec(p, JobSpec)
    if spec.message.html is None and spec.message.text is None:
        raise JobFileError(
            "field message: needs html, text or both",
            file=str(p),
            line=_locate(text, ["message"]),
            field="message",
        )
    t = spec.tracking
    if t is not None and t.generate and not t.base_url:
        raise JobFileError(
            "field tracking.base_url: needed to generate the tracking config",
            file=str(p),
            line=_locate(text, ["tracking"]),
            field="tracking.base_url",
        )
    if t is not None and spec.message.list_unsubscribe is not None:
        raise JobFileError(
            "field message.list_unsubscribe: with [tracking], List-Unsubscribe is made by"
            " the tracking server's one-click URL; remove one of them",
            file=str(p),
            line=_locate(text, ["message", "list_unsubscribe"]),
            field="message.list_unsubscribe",
        )
    d = spec.delivery
    for name, value in (
        ("connections", d.connections),
        ("messages_per_connection", d.messages_per_connection),
        ("attempts", d.attempts),
    ):
        if value < 1:
            raise JobFileError(
                f"field delivery.{name}: must be at least 1, got {value}",
                file=str(p),
                line=_locate(text, ["delivery", name]),
                field=f"delivery.{name}",
            )
    if d.ehlo_name is not None:
        try:
            check_ehlo_name(d.ehlo_name)
        except ValueError as exc:
            raise JobFileError(
                f"field delivery.ehlo_name: {exc}",
                file=str(p),
                line=_locate(text, ["delivery", "ehlo_name"]),
                field="delivery.ehlo_name",
            ) from None
    return Job(spec, p)
