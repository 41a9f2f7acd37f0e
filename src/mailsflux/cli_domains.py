"""``mailsflux domains check DOMAIN``: SPF, DKIM, DMARC and alignment in DNS.

The same check a job runs before it starts (:mod:`mailsflux.authcheck`),
as a table with the record to publish for each failure. Exit 0 when every
check passes, 1 when one fails (or DNS does not answer), 2 for bad input.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

import msgspec

from mailsflux.errors import ConfigError


def _nameserver(text: str) -> tuple[str, int]:
    from mailsflux.delivery.mx import parse_host_port

    try:
        return parse_host_port(text, 53, what="--nameserver", bare_ipv6=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _relay_host(text: str) -> str:
    """A relay URL (smtp://...) or a bare host[:port]: the host SPF must authorise."""
    from mailsflux.delivery.mx import parse_host_port
    from mailsflux.delivery.relay import Relay

    try:
        if "://" in text:
            return Relay.parse(text).host
        return parse_host_port(text, 25, what="--relay", bare_ipv6=True)[0]
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _identity(args: argparse.Namespace) -> Any:
    from mailsflux.authcheck import identity, job_identity
    from mailsflux.delivery.mx import normalize_domain
    from mailsflux.delivery.relay import Relay
    from mailsflux.errors import DKIMKeyError, MailsfluxError
    from mailsflux.jobs.jobfile import load_job

    try:
        domain = normalize_domain(args.domain)
    except MailsfluxError as exc:
        raise ConfigError(f"DOMAIN: {exc.message}") from None
    if args.job is not None:
        job = load_job(args.job)
        relay = Relay(host=args.relay, port=25) if args.relay else None
        ident = job_identity(job, relay, domain)
        changes: dict[str, Any] = {"from_domain": domain}
        if args.nameserver:
            changes["nameservers"] = tuple(args.nameserver)
        if args.source_ip:
            changes["source_ip"] = args.source_ip
        if args.selector:
            changes["selector"] = args.selector
        return msgspec.structs.replace(ident, **changes)
    if args.key is None or args.selector is None:
        raise ConfigError("give --job JOB.toml, or --key FILE with --selector S")
    try:
        pem = Path(args.key).read_bytes()
    except OSError as exc:
        raise DKIMKeyError(f"cannot read key: {exc.strerror}", file=args.key) from None
    return identity(
        from_domain=domain,
        dkim_domain=args.dkim_domain or domain,
        selector=args.selector,
        key_pem=pem,
        algorithm=args.algorithm,
        spf_domain=args.spf_domain,
        relay_host=args.relay,
        source_ip=args.source_ip,
        nameservers=tuple(args.nameserver or ()),
    )


def cmd_domains_check(args: argparse.Namespace) -> int:
    from mailsflux.authcheck import DNSUnavailable, check, reserved_notice

    ident = _identity(args)
    note = reserved_notice(ident.from_domain)
    if note is not None:
        if args.json:
            print(msgspec.json.encode({"domain": ident.from_domain, "exempt": note}).decode())
        else:
            print(note)
        return 0
    try:
        report = check(ident, timeout=args.timeout, lifetime=args.timeout * 2)
    except DNSUnavailable as exc:
        print(f"mailsflux: error: cannot check {ident.from_domain}: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        doc = {"domain": report.domain, "ok": report.ok, "findings": report.findings}
        print(msgspec.json.encode(doc).decode())
    else:
        width = max(len(f.check) for f in report.findings)
        for f in report.findings:
            print(f"{f.check:<{width}}  {'pass' if f.ok else 'FAIL'}  {f.detail}")
            if f.publish is not None:
                print(f"{'':<{width}}        publish: {f.publish}")
    return 0 if report.ok else 1


def add_domains_parser(sub: Any) -> None:
    p = sub.add_parser("domains", help="check a sending domain's SPF, DKIM and DMARC records")
    dsub = p.add_subparsers(dest="domains_command", required=True, metavar="ACTION")
    c = dsub.add_parser(
        "check", help="SPF, DKIM, DMARC and alignment of DOMAIN in DNS, with records to publish"
    )
    c.add_argument("domain", help="the From domain to check")
    c.add_argument("--job", metavar="JOB.toml", help="take key, selector, relay, DNS from a job")
    c.add_argument("--key", metavar="FILE", help="the DKIM private key (PEM) mail is signed with")
    c.add_argument("--selector", metavar="S", help="DKIM selector (s=); with --job, overrides it")
    c.add_argument("--dkim-domain", metavar="D", help="DKIM signing domain d= (default: DOMAIN)")
    c.add_argument(
        "--algorithm",
        default="rsa-sha256",
        choices=["rsa-sha256", "ed25519-sha256"],
        help="the key's algorithm (rsa-sha256)",
    )
    c.add_argument(
        "--relay",
        type=_relay_host,
        metavar="HOST",
        help="relay host or URL mail leaves through: SPF must authorise its addresses",
    )
    c.add_argument(
        "--source-ip", type=_ip, metavar="IP", help="this host's public address, for SPF"
    )
    c.add_argument(
        "--spf-domain", metavar="D", help="envelope (MAIL FROM) domain for SPF (default: DOMAIN)"
    )
    c.add_argument(
        "--nameserver",
        type=_nameserver,
        action="append",
        metavar="IP[:PORT]",
        help="DNS server to ask (repeatable; default: the job's, else the system's)",
    )
    c.add_argument(
        "--timeout", type=float, default=3.0, metavar="SECONDS", help="per DNS query (3)"
    )
    c.add_argument("--json", action="store_true", help="the findings as one JSON document")
    c.set_defaults(func=cmd_domains_check)


__all__ = ["add_domains_parser"]
