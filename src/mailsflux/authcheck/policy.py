"""What a job's check means: enforce, warn or off, reserved-domain exemption, a cache.

``[delivery] authentication``:

- ``"enforce"`` (default): a job whose records fail does not start; the
  error names each record to publish. DNS that does not answer refuses too.
- ``"warn"``: the failures are reported as warnings and the job runs.
- ``"off"``: no lookups at all.

From domains reserved by RFC 2606 / RFC 6761 (example.com, *.test, ...)
cannot publish records: their jobs are exempt (:func:`exemption` says so in
one line) whatever the setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path

from mailsflux.authcheck.check import Identity, Report, a_label, check, identity
from mailsflux.authcheck.lookup import DNSUnavailable
from mailsflux.authcheck.records import reserved
from mailsflux.compose import split_mailbox
from mailsflux.delivery.mx import parse_host_port
from mailsflux.delivery.relay import Relay
from mailsflux.dkim.keyfiles import ensure_key
from mailsflux.errors import AuthenticationError, ConfigError
from mailsflux.jobs.jobfile import DeliverySpec, DKIMSpec, Job

#: What the failing checks' warnings go to under "warn".
Warn = Callable[[str], None]

_SETTING = '[delivery] authentication = "warn" (or "off")'


def _templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def from_domain(job: Job, sender: str | None = None) -> str | None:
    """The From header's domain, taken exactly as the composer takes it
    (``split_mailbox``: the address after the last ``<``); None when a
    merge tag is in the domain (each row then has its own).

    A From that is not one mailbox (``A <a@x>, <b@y>``: the composer would
    keep ``b@y`` with the rest as its display name) is refused: what the
    check looks at must be what goes out. ``sender`` is the From as sent
    when the job's is a stand-in (an engine's plain message)."""
    sender = sender or job.spec.message.sender
    name, address = split_mailbox(sender)
    if any(c in name for c in "<>"):
        raise ConfigError(
            "message.from must be one mailbox (Name <address>): its display name holds"
            " an address in angle brackets",
            file=str(job.path),
            field="message.from",
        )
    domain = address.rpartition("@")[2].strip()
    if _templated(domain) or (not domain and _templated(address)):
        return None
    if not domain:
        raise ConfigError("message.from has no domain", file=str(job.path), field="message.from")
    return domain.lower()


def _exempt_domain(job: Job, sender: str | None = None) -> str | None:
    domain = from_domain(job, sender)
    return domain if domain is not None and reserved(domain) else None


def exemption(job: Job, sender: str | None = None) -> str | None:
    """A one-line notice when the job's From domain is reserved, else None."""
    domain = _exempt_domain(job, sender)
    return reserved_notice(domain) if domain is not None else None


def reserved_notice(domain: str) -> str | None:
    """The one line said for a reserved ``domain``; None for any other."""
    if not reserved(domain):
        return None
    return (
        f"{domain} is a reserved domain (RFC 2606/6761) that cannot publish SPF, DKIM or"
        " DMARC records: outbound authentication not checked"
    )


def templated_from(job: Job) -> str:
    """The one line said of a From whose domain is a merge tag."""
    return (
        f"message.from {job.spec.message.sender!r} takes its domain from a merge tag, so"
        " each row's From domain would go out unchecked: write the domain literally"
        " (merge tags in the name and local part are fine)"
    )


def job_identity(job: Job, relay: Relay | None, domain: str | None = None) -> Identity:
    """The job's sending identity: From, DKIM key, envelope domain, relay, DNS
    servers. ``domain`` replaces a From domain that is a merge tag (refused
    otherwise)."""
    domain = domain or from_domain(job)
    if domain is None:
        raise AuthenticationError(templated_from(job), file=str(job.path), field="message.from")
    tracking = job.spec.tracking
    if relay is None:
        relay = job.relay()
    return _identity(
        job.spec.delivery,
        job.spec.dkim,
        job.key_path,
        relay,
        from_domain=domain,
        spf_domain=tracking.bounce_domain if tracking is not None else None,
        where=str(job.path),
    )


def key_identity(
    delivery: DeliverySpec, dkim: DKIMSpec, relay: Relay | None, from_domain: str | None = None
) -> Identity:
    """A server's sending identity for one DKIM key: mail From ``from_domain``
    (the key's own domain by default) signed with it."""
    domain = (from_domain or dkim.domain).lower()
    return _identity(delivery, dkim, Path(dkim.key), relay, from_domain=domain)


def signing_key(domain: str, keys: Sequence[DKIMSpec]) -> DKIMSpec | None:
    """The key mail From ``domain`` is signed with, as the engine picks it:
    the key of that domain or a parent, else the first."""
    name = a_label(domain)
    for k in keys:
        d = a_label(k.domain)
        if name == d or name.endswith("." + d):
            return k
    return keys[0] if keys else None


def _identity(
    d: DeliverySpec,
    dkim: DKIMSpec,
    key_path: Path,
    relay: Relay | None,
    *,
    from_domain: str,
    spf_domain: str | None = None,
    where: str | None = None,
) -> Identity:
    servers = tuple(
        parse_host_port(n, 53, what="delivery.nameservers", bare_ipv6=True) for n in d.nameservers
    )
    if d.source_ip is not None:
        try:
            ipaddress.ip_address(d.source_ip)
        except ValueError:
            raise ConfigError(
                f"delivery.source_ip {d.source_ip!r} is not an IP address",
                file=where,
                field="delivery.source_ip",
            ) from None
    try:
        pem = key_path.read_bytes()
    except OSError as exc:
        raise AuthenticationError(
            f"cannot read the DKIM key {key_path}: {exc.strerror}", field="dkim.key"
        ) from None
    return identity(
        from_domain=from_domain,
        dkim_domain=dkim.domain,
        selector=dkim.selector,
        key_pem=pem,
        algorithm=dkim.algorithm,
        spf_domain=spf_domain,
        relay_host=relay.host if relay is not None else None,
        source_ip=d.source_ip,
        nameservers=servers,
    )


def refusal(what: str, report: Report, outcome: str = "not started") -> AuthenticationError:
    lines = [
        f"{what} {outcome}: {report.domain} fails outbound authentication"
        f" (publish the records below, or set {_SETTING}):"
    ]
    lines += [f"  {f.line()}" for f in report.failures()]
    return AuthenticationError("\n".join(lines), field="delivery.authentication")


class Checker:
    """Checks identities once per run: the result is kept for the process's
    life (a long-running server checks a changed key or relay anew)."""

    def __init__(self) -> None:
        self._reports: dict[Identity, Report] = {}
        self._lock = asyncio.Lock()

    async def report(self, ident: Identity) -> Report:
        async with self._lock:
            cached = self._reports.get(ident)
            if cached is None:
                cached = await asyncio.to_thread(check, ident)
                self._reports[ident] = cached
            return cached

    async def job(
        self, job: Job, relay: Relay | None, warn: Warn, sender: str | None = None
    ) -> None:
        """Enforce the job's setting: raise AuthenticationError, warn, or pass
        (``sender`` as for :func:`from_domain`)."""
        mode = job.spec.delivery.authentication
        if mode == "off" or exemption(job, sender) is not None:
            return
        domain = from_domain(job, sender)
        if domain is None:
            # Each row would have its own From domain, none of them checked.
            if mode == "enforce":
                raise AuthenticationError(
                    templated_from(job) + f"; or set {_SETTING}",
                    file=str(job.path),
                    field="message.from",
                )
            warn(f"outbound authentication: {templated_from(job)}")
            domain = job.spec.dkim.domain
        await self.enforce(job_identity(job, relay, domain), mode, f"job {job.name!r}", warn)

    async def key(
        self,
        delivery: DeliverySpec,
        key: DKIMSpec,
        relay: Relay | None,
        from_domain: str,
        what: str,
        warn: Warn,
        outcome: str = "not started",
    ) -> None:
        """Mail From ``from_domain`` signed with ``key`` (its ``key`` path
        resolved), by ``delivery.authentication``. A ``generate = true`` key
        is made first, so a new key is refused with its TXT record to publish
        instead of going out unchecked; a missing one is left to the signer."""
        mode = delivery.authentication
        if mode == "off" or reserved(from_domain):
            return
        path = Path(key.key)
        if key.generate:
            await asyncio.to_thread(
                ensure_key,
                path,
                domain=key.domain,
                selector=key.selector,
                algorithm=key.algorithm,
                bits=key.bits,
            )
        elif not path.exists():
            return
        ident = key_identity(delivery, key, relay, from_domain)
        await self.enforce(ident, mode, what, warn, outcome)

    async def enforce(
        self, ident: Identity, mode: str, what: str, warn: Warn, outcome: str = "not started"
    ) -> None:
        """``mode`` for ``ident``: "enforce" raises AuthenticationError naming
        the records, "warn" calls ``warn`` per failure, "off" does nothing."""
        if mode == "off" or reserved(ident.from_domain):
            return
        try:
            report = await self.report(ident)
        except DNSUnavailable as exc:
            message = (
                f"cannot check outbound authentication of {ident.from_domain}:"
                f" DNS unavailable ({exc.message}); set {_SETTING} to send without it"
            )
            if mode == "enforce":
                raise AuthenticationError(message, field="delivery.authentication") from None
            warn(message)
            return
        if report.ok:
            return
        if mode == "enforce":
            raise refusal(what, report, outcome)
        for finding in report.failures():
            warn(f"outbound authentication: {finding.line()}")


__all__ = [
    "Checker",
    "exemption",
    "from_domain",
    "job_identity",
    "key_identity",
    "refusal",
    "reserved_notice",
    "signing_key",
    "templated_from",
]
