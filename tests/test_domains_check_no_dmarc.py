"""No DMARC record at the From domain nor its organizational domain: fail, naming
the _dmarc record of the organizational domain."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DOMAIN, SELECTOR, cli_args, write_key, zone
from tests._dns import DNSServer


def test_no_dmarc_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, record = write_key(tmp_path)
    sub = f"news.{DOMAIN}"
    z = zone(record)
    del z[f"_dmarc.{DOMAIN}"]
    z[f"{SELECTOR}._domainkey.{sub}"] = {"TXT": [f'"{record}"']}
    z[sub] = z[DOMAIN]
    with DNSServer(z) as dns:
        args = cli_args(dns.port, key)
        args[2] = sub
        assert main(args) == 1
        # RFC 7489 6.6.3: the From domain first, then its organizational domain.
        assert dns.count(f"_dmarc.{sub}", "TXT") == 1
        assert dns.count(f"_dmarc.{DOMAIN}", "TXT") == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("dmarc"))
    assert "FAIL" in line and f"no DMARC record at _dmarc.{sub} or _dmarc.{DOMAIN}" in line
    assert f'publish: _dmarc.{DOMAIN} TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"' in out
