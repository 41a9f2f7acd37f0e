"""DMARC with adkim=s and a DKIM d= that is a subdomain of the From domain:
misaligned, and the fix named is the DMARC record with relaxed alignment."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DOMAIN, SELECTOR, cli_args, write_key, zone
from tests._dns import DNSServer


def test_strict_adkim_with_subdomain_signer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, record = write_key(tmp_path)
    signer = f"mail.{DOMAIN}"
    z = zone(record)
    z[f"_dmarc.{DOMAIN}"] = {"TXT": ['"v=DMARC1; p=reject; adkim=s"']}
    z[f"{SELECTOR}._domainkey.{signer}"] = {"TXT": [f'"{record}"']}
    with DNSServer(z) as dns:
        assert main([*cli_args(dns.port, key), "--dkim-domain", signer]) == 1
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if not ln.startswith(" ")}
    assert rows == {"dkim": "pass", "spf": "pass", "dmarc": "pass", "alignment": "FAIL"}
    line = next(x for x in out.splitlines() if x.startswith("alignment"))
    assert f"From {DOMAIN} does not align with DKIM d={signer} (strict, adkim=s)" in line
    assert f'publish: _dmarc.{DOMAIN} TXT "v=DMARC1; p=reject; adkim=r"' in out
