"""No SPF record at all: fail, with a record authorising the relay's address."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DOMAIN, RELAY_IP, cli_args, write_key, zone
from tests._dns import DNSServer


def test_no_spf_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, record = write_key(tmp_path)
    z = zone(record)
    z[DOMAIN] = {"MX": ["10 mx.mailhost.net."]}
    with DNSServer(z) as dns:
        assert main(cli_args(dns.port, key)) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("spf"))
    assert "FAIL" in line and "has no SPF record" in line
    assert f'publish: {DOMAIN} TXT "v=spf1 ip4:{RELAY_IP} -all"' in out
