"""DNS for the authentication check: one resolver per check, the job's nameservers.

TXT and address lookups go through a dnspython resolver built from
``[delivery] nameservers`` (the system's when empty), as MX lookups do.
SPF is evaluated by pyspf (the ``spf`` module), whose DNS driver is a module
function: :func:`spf_check` installs one that answers through the resolver of
the check running in this thread (a context variable), so two checks with
different nameservers never share one, and dnspython 2's ``resolve`` is
used rather than the deprecated ``query`` pyspf's own driver calls.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailsflux.errors import MailsfluxError

# dnspython's resolver and pyspf are imported when a check runs: a job from
# a reserved domain, or with the check off, never loads them.
if TYPE_CHECKING:
    import dns.resolver


class DNSUnavailable(MailsfluxError):
    """No answer (timeout, SERVFAIL, no nameserver): the records cannot be checked."""

    permanent = False


def make_resolver(
    nameservers: Sequence[tuple[str, int]] | None, timeout: float = 3.0, lifetime: float = 8.0
) -> dns.resolver.Resolver:
    import dns.nameserver
    import dns.resolver

    if not nameservers:
        try:
            resolver = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise DNSUnavailable(f"no DNS resolver configured ({exc})") from None
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    return resolver


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str] | None:
    """The TXT strings of ``name``, each record's strings joined; None for NXDOMAIN."""
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(name, "TXT", raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except (dns.exception.DNSException, OSError) as exc:
        raise DNSUnavailable(f"TXT lookup of {name} failed: {describe(exc)}") from None
    if answer.rrset is None:
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]


def addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    """A and AAAA of ``host`` (empty when it has none)."""
    import dns.exception
    import dns.resolver

    found: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, kind, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise DNSUnavailable(f"{kind} lookup of {host} failed: {describe(exc)}") from None
        if answer.rrset is not None:
            found += [r.to_text() for r in answer.rrset]
    return found


def describe(exc: BaseException) -> str:
    import dns.exception
    import dns.resolver

    if isinstance(exc, dns.resolver.LifetimeTimeout | dns.exception.Timeout):
        return "no answer (timed out)"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no nameserver answered"
    return f"{type(exc).__name__}: {exc}"


# -- pyspf -------------------------------------------------------------------

_current: contextvars.ContextVar[dns.resolver.Resolver] = contextvars.ContextVar("spf_resolver")
_install_lock = threading.Lock()


def _lookup(name: str, qtype: str, strict: object = True, timeout: float = 20) -> list[Any]:
    """pyspf's DNS driver contract: ``[((name, type), data), ...]``; TempError on failure."""
    import dns.exception
    import dns.resolver
    import spf

    resolver = _current.get()
    out: list[Any] = []
    try:
        answer = resolver.resolve(
            name, qtype, raise_on_no_answer=False, search=False, lifetime=timeout
        )
    except dns.resolver.NXDOMAIN:
        return out
    except (dns.exception.DNSException, OSError) as exc:
        raise spf.TempError(f"DNS {describe(exc)}") from None
    for rdata in answer.rrset or ():
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


@functools.cache
def _spf_module() -> Any:
    import spf

    with _install_lock:
        spf.DNSLookup = _lookup
    return spf


def spf_check(
    resolver: dns.resolver.Resolver, address: str, domain: str, helo: str
) -> tuple[str, str]:
    """pyspf's RFC 7208 result for mail from ``postmaster@domain`` sent from
    ``address``: ``(result, explanation)``, result one of pass, fail,
    softfail, neutral, none, permerror, temperror."""
    spf = _spf_module()
    token = _current.set(resolver)
    try:
        query = spf.query(i=address, s=f"postmaster@{domain}", h=helo, timeout=resolver.lifetime)
        result, _code, explanation = query.check()
    finally:
        _current.reset(token)
    return str(result), str(explanation)


def spf_text(records: list[str] | None) -> str | None:
    """The one ``v=spf1`` record among TXT strings (RFC 7208 4.5), else None."""
    found = [r for r in records or [] if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    return found[0] if len(found) == 1 else None


__all__ = ["DNSUnavailable", "addresses", "make_resolver", "spf_check", "spf_text", "txt"]
