"""DKIM, SPF, DMARC and alignment of one sending identity, checked through DNS.

:func:`check` is synchronous (pyspf is); callers off the event loop run it
in a thread. It never sends mail and reads only public DNS records.

Which address SPF is evaluated for: the relay's addresses when a relay is
used and they are public (the receiver sees the relay connect); the
configured ``source_ip`` otherwise (a relay on this host or its private
network forwards from somewhere this process cannot see, and direct MX
delivery connects from this host's public address, which behind NAT it
cannot learn itself). With neither, SPF is checked for a valid record only,
and the finding says so.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import TYPE_CHECKING

import msgspec

import mailsflux.authcheck.lookup as lookup
from mailsflux._idna import to_ascii
from mailsflux.authcheck.records import (
    Record,
    aligned,
    dmarc_record,
    local_address,
    organizational_domain,
    spf_record,
    tags,
)
from mailsflux.dkim.keygen import dns_txt_record

if TYPE_CHECKING:
    from dns.resolver import Resolver


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """What one job sends as: the inputs of a check (and its cache key)."""

    from_domain: str
    dkim_domain: str
    selector: str
    #: The private key's public half as its DKIM TXT value (computed, not read).
    dkim_record: str
    #: The envelope (MAIL FROM) domain SPF is checked for.
    spf_domain: str
    relay_host: str | None = None
    source_ip: str | None = None
    nameservers: tuple[tuple[str, int], ...] = ()


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the report: a check, whether it passed, why, and the fix."""

    check: str
    ok: bool
    detail: str
    publish: Record | None = None

    def line(self) -> str:
        text = f"{self.check}: {self.detail}"
        if self.publish is not None:
            text += f"; publish {self.publish}"
        return text


class Report(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]


def identity(
    *,
    from_domain: str,
    dkim_domain: str,
    selector: str,
    key_pem: bytes,
    algorithm: str = "rsa-sha256",
    spf_domain: str | None = None,
    relay_host: str | None = None,
    source_ip: str | None = None,
    nameservers: tuple[tuple[str, int], ...] = (),
) -> Identity:
    return Identity(
        from_domain=a_label(from_domain),
        dkim_domain=a_label(dkim_domain),
        selector=selector,
        dkim_record=dns_txt_record(key_pem, algorithm=algorithm),
        spf_domain=a_label(spf_domain or from_domain),
        relay_host=relay_host,
        source_ip=source_ip,
        nameservers=nameservers,
    )


def a_label(domain: str) -> str:
    """``domain`` as DNS and the signer see it (IDNA 2008 A-labels), so a
    Unicode From compares equal to its A-label DKIM domain; an invalid one
    is kept (its lookups then fail and say so)."""
    name = domain.lower().rstrip(".")
    try:
        return to_ascii(name)
    except ValueError:
        return name


def check(ident: Identity, *, timeout: float = 3.0, lifetime: float = 8.0) -> Report:
    """Every check of ``ident``; raises :class:`lookup.DNSUnavailable` when
    DNS does not answer (a missing record is a finding, not an error)."""
    resolver = lookup.make_resolver(ident.nameservers or None, timeout, lifetime)
    dmarc, where, dmarc_finding = _dmarc(resolver, ident)
    findings = (
        _dkim(resolver, ident),
        _spf(resolver, ident),
        dmarc_finding,
        _alignment(ident, dmarc, where),
    )
    return Report(domain=ident.from_domain, findings=findings)


def _dkim(resolver: Resolver, ident: Identity) -> Finding:
    name = f"{ident.selector}._domainkey.{ident.dkim_domain}"
    want = Record(name, "TXT", ident.dkim_record)
    expected = tags(ident.dkim_record)
    records = lookup.txt(resolver, name)
    if not records:
        return Finding(check="dkim", ok=False, detail=f"no DKIM key at {name}", publish=want)
    for text in records:
        got = tags(text)
        if got.get("v", "DKIM1") != "DKIM1":
            continue
        if got.get("k", "rsa").lower() != expected["k"].lower() or not _p(got):
            continue
        if _p(got) != _p(expected):
            continue
        unusable = _unusable(got)
        if unusable:
            return Finding(
                check="dkim",
                ok=False,
                detail=f"the key at {name} {unusable}: receivers will not verify with it",
                publish=want,
            )
        return Finding(check="dkim", ok=True, detail=f"{name} publishes this key")
    return Finding(
        check="dkim",
        ok=False,
        detail=f"the key at {name} is not the public half of the signing key",
        publish=want,
    )


def _unusable(t: dict[str, str]) -> str:
    """Why RFC 6376 3.6.1 makes a key record useless for our signatures
    (every algorithm we sign with hashes with sha256), else ''."""
    hashes = {h.strip().lower() for h in t.get("h", "sha256").split(":")}
    if "sha256" not in hashes:
        return f"allows only h={t['h']} (signatures use sha256)"
    services = {v.strip().lower() for v in t.get("s", "*").split(":")}
    if not services & {"email", "*"}:
        return f"is not for email (s={t['s']})"
    return ""


def _p(t: dict[str, str]) -> bytes:
    try:
        return base64.b64decode("".join(t.get("p", "").split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _spf_addresses(resolver: Resolver, ident: Identity) -> tuple[list[str], str]:
    """The addresses receivers will see, and where they came from."""
    if ident.relay_host:
        host = ident.relay_host.strip("[]")
        try:
            found = [str(ipaddress.ip_address(host))]
        except ValueError:
            found = lookup.addresses(resolver, host)
        public = [a for a in found if not local_address(a)]
        if public:
            return public, f"relay {ident.relay_host}"
    if ident.source_ip:
        return [str(ipaddress.ip_address(ident.source_ip))], "source_ip"
    return [], ""


def _spf(resolver: Resolver, ident: Identity) -> Finding:
    domain = ident.spf_domain
    existing = lookup.spf_text(lookup.txt(resolver, domain))
    addresses, source = _spf_addresses(resolver, ident)
    if not addresses:
        if existing is None:
            return Finding(
                check="spf",
                ok=False,
                detail=f"{domain} has no SPF record (set [delivery] source_ip for one naming"
                " this host's address)",
                publish=spf_record(domain, None, []),
            )
        return Finding(
            check="spf",
            ok=True,
            detail=f"{domain} has an SPF record; the sending address is unknown, so it"
            " was not evaluated (set [delivery] source_ip)",
        )
    failing: list[str] = []
    results: list[str] = []
    for address in addresses:
        result, _ = lookup.spf_check(resolver, address, domain, domain)
        if result == "temperror":
            raise lookup.DNSUnavailable(f"SPF of {domain} could not be evaluated (temperror)")
        results.append(f"{address} {result}")
        if result != "pass":
            failing.append(address)
    if not failing:
        return Finding(
            check="spf", ok=True, detail=f"{domain} authorises {source} ({', '.join(results)})"
        )
    what = "has no SPF record" if existing is None else "does not authorise"
    return Finding(
        check="spf",
        ok=False,
        detail=f"{domain} {what} {source} ({', '.join(results)})",
        publish=spf_record(domain, existing, failing),
    )


def _dmarc(resolver: Resolver, ident: Identity) -> tuple[dict[str, str] | None, str, Finding]:
    """RFC 7489 6.6.3: the From domain's record, else (only when it has none)
    its organizational domain's."""
    domain = ident.from_domain
    org = organizational_domain(domain)
    for where in dict.fromkeys((domain, org)):
        name = f"_dmarc.{where}"
        found = [r for r in lookup.txt(resolver, name) or [] if r.lower().startswith("v=dmarc1")]
        problem = ""
        if len(found) > 1:
            # Several records end discovery here, with no fall-through to
            # the organizational domain: no policy applies.
            problem = f"{name} has {len(found)} DMARC records, so receivers apply no policy:"
            problem += " keep exactly one"
        elif len(found) == 1:
            t = tags(found[0])
            if t.get("p") in ("none", "quarantine", "reject"):
                return t, where, Finding(check="dmarc", ok=True, detail=f"{name} p={t['p']}")
            problem = f"{name} has no valid p= policy"
        if problem:
            return None, where, _no_dmarc(problem, where)
    missing = f"no DMARC record at _dmarc.{domain}" + (f" or _dmarc.{org}" if org != domain else "")
    return None, org, _no_dmarc(missing, org)


def _no_dmarc(detail: str, where: str) -> Finding:
    return Finding(check="dmarc", ok=False, detail=detail, publish=dmarc_record(where))


def _alignment(ident: Identity, dmarc: dict[str, str] | None, where: str) -> Finding:
    mode = (dmarc or {}).get("adkim", "r").lower()
    mode = "s" if mode == "s" else "r"
    how = "strict" if mode == "s" else "relaxed"
    f, d = ident.from_domain, ident.dkim_domain
    if aligned(f, d, mode):
        return Finding(check="alignment", ok=True, detail=f"From {f} aligns with d={d} ({how})")
    detail = f"From {f} does not align with DKIM d={d} ({how}, adkim={mode})"
    if mode == "s" and aligned(f, d, "r"):
        # Relaxed alignment would hold: the DMARC record is the one fix.
        return Finding(
            check="alignment",
            ok=False,
            detail=detail + f"; or sign with [dkim] domain = {f!r}",
            publish=dmarc_record(where, dmarc),
        )
    return Finding(
        check="alignment",
        ok=False,
        detail=detail + f"; set [dkim] domain = {f!r}",
        publish=Record(f"{ident.selector}._domainkey.{f}", "TXT", ident.dkim_record),
    )


__all__ = ["Finding", "Identity", "Report", "a_label", "check", "identity"]
