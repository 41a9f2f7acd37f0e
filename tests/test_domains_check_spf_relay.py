"""SPF does not authorise the relay: the check fails and gives the record with
the relay's address added to the one published."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DOMAIN, RELAY_IP, cli_args, write_key, zone
from tests._dns import DNSServer


def test_spf_without_the_relay_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, record = write_key(tmp_path)
    spf = {"TXT": ['"v=spf1 ip4:198.51.100.0/24 mx -all"']}
    z = zone(record)
    z[DOMAIN] = spf
    with DNSServer(z) as dns:
        assert main(cli_args(dns.port, key)) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("spf"))
    assert (
        "FAIL" in line and f"does not authorise relay relay.mailhost.net ({RELAY_IP} fail)" in line
    )
    assert f'publish: {DOMAIN} TXT "v=spf1 ip4:{RELAY_IP} ip4:198.51.100.0/24 mx -all"' in out
