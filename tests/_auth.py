"""A sending domain whose SPF, DKIM and DMARC records the test DNS server publishes.

The From domain is not a reserved one (those are exempt from the check):
``northwind-mail.co.uk``, whose organizational domain the Public Suffix List
gives (``co.uk`` is a public suffix). Its relay ``relay.mailhost.net`` has a
documentation address (203.0.113.25) that SPF must authorise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailsflux.authcheck import Report, check, identity
from mailsflux.dkim import dns_txt_record, generate_private_key

DOMAIN = "northwind-mail.co.uk"
SELECTOR = "s1"
RELAY_HOST = "relay.mailhost.net"
RELAY_IP = "203.0.113.25"
DKIM_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"


def write_key(directory: Path, name: str = "s1.pem") -> tuple[Path, str]:
    """A new 1024-bit RSA key file and the DKIM TXT value publishing it."""
    pem = generate_private_key(bits=1024)
    path = directory / name
    path.write_bytes(pem)
    return path, dns_txt_record(pem)


def zone(dkim_value: str) -> dict[str, Any]:
    """Records that pass every check (a test changes the one it is about)."""
    return {
        DOMAIN: {"TXT": [f'"v=spf1 ip4:{RELAY_IP} -all"']},
        DKIM_NAME: {"TXT": [_txt(dkim_value)]},
        f"_dmarc.{DOMAIN}": {"TXT": ['"v=DMARC1; p=reject; adkim=r"']},
        RELAY_HOST: {"A": [RELAY_IP]},
    }


def check_at(
    dns_port: int, key: Path, from_domain: str = DOMAIN, dkim_domain: str | None = None
) -> Report:
    """The check of mail From ``from_domain`` signed with ``key`` (d= the From
    domain unless given), SPF for RELAY_IP, asking the test DNS server."""
    ident = identity(
        from_domain=from_domain,
        dkim_domain=dkim_domain or from_domain,
        selector=SELECTOR,
        key_pem=key.read_bytes(),
        source_ip=RELAY_IP,
        nameservers=(("127.0.0.1", dns_port),),
    )
    return check(ident, timeout=1, lifetime=2)


def _txt(value: str) -> str:
    # One TXT record of 255-octet strings, as a zone file would hold it.
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def cli_args(dns_port: int, key: Path, *extra: str) -> list[str]:
    return [
        "domains",
        "check",
        DOMAIN,
        "--key",
        str(key),
        "--selector",
        SELECTOR,
        "--relay",
        RELAY_HOST,
        "--nameserver",
        f"127.0.0.1:{dns_port}",
        "--timeout",
        "1",
        *extra,
    ]


def write_job(
    tmp_path: Path,
    *,
    relay: str,
    dns_port: int,
    key: Path,
    sender: str = f"Northwind <news@{DOMAIN}>",
    dkim_domain: str = DOMAIN,
    authentication: str | None = None,
    source_ip: str | None = RELAY_IP,
    rows: int = 3,
) -> Path:
    """A job sending ``rows`` messages through ``relay`` (the test's SMTP server,
    on loopback: SPF is then evaluated for ``source_ip``), asking ``dns_port``."""
    d = tmp_path / "job"
    d.mkdir(exist_ok=True)
    lines = ["email,name"] + [f"user{i}@example.org,User {i}" for i in range(rows)]
    (d / "recipients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (d / "body.txt").write_text("Hello {{name}}\n", encoding="utf-8")
    toml = [
        "[message]",
        f"from = {sender!r}",
        'subject = "Hello"',
        'text = "body.txt"',
        "[recipients]",
        'file = "recipients.csv"',
        "[dkim]",
        f'domain = "{dkim_domain}"',
        f'selector = "{SELECTOR}"',
        f'key = "{key}"',
        "[delivery]",
        f'relay = "{relay}"',
        f'nameservers = ["127.0.0.1:{dns_port}"]',
        "attempts = 1",
    ]
    if authentication is not None:
        toml.append(f'authentication = "{authentication}"')
    if source_ip is not None:
        toml.append(f'source_ip = "{source_ip}"')
    path = d / "job.toml"
    path.write_text("\n".join(toml) + "\n", encoding="utf-8")
    return path
