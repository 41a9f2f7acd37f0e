"""The DNS records outbound authentication reads, and the ones it asks for.

- Tag lists (``k=v; k=v``, RFC 6376 3.2 and RFC 7489 6.3): :func:`tags`.
- Reserved names (RFC 2606, RFC 6761): :func:`reserved` — nobody can
  publish records for them, so mail from them is exempt from the check.
- The organizational domain (RFC 7489 3.2) from the Public Suffix List
  that the ``publicsuffixlist`` package ships (no download at run time).
- What to publish when a check fails: :class:`Record` values built here,
  so every failure names the exact name, type and value.
"""

from __future__ import annotations

import functools
import ipaddress

import msgspec

#: RFC 2606 / RFC 6761 top-level names and second-level domains that can never
#: carry real DNS records.
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost"})
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})


class Record(msgspec.Struct, frozen=True):
    """A DNS record to publish: owner name, type and value."""

    name: str
    type: str
    value: str

    def __str__(self) -> str:
        return f'{self.name} {self.type} "{self.value}"'


def reserved(domain: str) -> bool:
    """True for example.com/.net/.org, *.example, *.test, *.invalid, *.localhost
    and their subdomains: names that cannot publish SPF, DKIM or DMARC."""
    name = domain.lower().rstrip(".")
    labels = name.split(".")
    if labels[-1] in _RESERVED_TLDS:
        return True
    return ".".join(labels[-2:]) in _RESERVED_DOMAINS


def tags(text: str) -> dict[str, str]:
    """A tag-value list as a dict (keys lower case, whitespace trimmed);
    a malformed element is skipped, as RFC 7489 6.3 asks of receivers."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out.setdefault(key.strip().lower(), value.strip())
    return out


@functools.lru_cache(maxsize=1)
def _psl() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The registrable domain of ``domain`` (RFC 7489 3.2: one label below its
    public suffix); a public suffix itself is its own."""
    name = domain.lower().rstrip(".")
    org = _psl().privatesuffix(name)  # type: ignore[attr-defined]
    return str(org) if org else name


def aligned(from_domain: str, signing_domain: str, mode: str) -> bool:
    """RFC 7489 3.1.1: strict needs the same name, relaxed the same organizational domain."""
    a, b = from_domain.lower().rstrip("."), signing_domain.lower().rstrip(".")
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def spf_mechanism(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"ip{ip.version}:{ip}"


def spf_record(domain: str, existing: str | None, addresses: list[str]) -> Record:
    """The SPF record that authorises ``addresses``: the existing one with
    them added after ``v=spf1``, or a new one ending in ``-all``."""
    mechs = " ".join(spf_mechanism(a) for a in addresses)
    if existing:
        head, _, rest = existing.partition(" ")
        value = f"{head} {mechs} {rest}".strip()
    else:
        value = f"v=spf1 {mechs} -all" if mechs else "v=spf1 mx -all"
    return Record(domain, "TXT", value)


def dmarc_record(domain: str, existing: dict[str, str] | None = None) -> Record:
    """A DMARC record for ``domain``: the existing tags with relaxed DKIM
    alignment, or a new quarantine policy."""
    if existing:
        merged = dict(existing)
        merged["adkim"] = "r"
        value = "; ".join(f"{k}={v}" for k, v in merged.items())
    else:
        value = "v=DMARC1; p=quarantine; adkim=r; aspf=r"
    return Record(f"_dmarc.{domain}", "TXT", value)


#: Relay addresses that are this host or its private network: mail handed to
#: them leaves from somewhere else, so they say nothing about SPF.
def local_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    private = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("172.16.0.0/12"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("100.64.0.0/10"),
        ipaddress.ip_network("fc00::/7"),
    )
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or any(ip.version == n.version and ip in n for n in private)
    )


__all__ = [
    "Record",
    "aligned",
    "dmarc_record",
    "local_address",
    "organizational_domain",
    "reserved",
    "spf_record",
    "tags",
]
