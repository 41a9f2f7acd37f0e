"""The DKIM key in DNS is another key's: the check fails and names the TXT record
computed from the private key the mail is signed with."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DKIM_NAME, cli_args, write_key, zone
from tests._dns import DNSServer


def test_published_key_is_not_the_signing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, record = write_key(tmp_path)
    _, other = write_key(tmp_path, "other.pem")
    with DNSServer(zone(other)) as dns:
        assert main(cli_args(dns.port, key)) == 1
    out = capsys.readouterr().out.splitlines()
    dkim = [line for line in out if line.startswith("dkim")]
    assert "FAIL" in dkim[0] and "not the public half of the signing key" in dkim[0]
    publish = out[out.index(dkim[0]) + 1].strip()
    assert publish == f'publish: {DKIM_NAME} TXT "{record}"'
    assert [line.split()[1] for line in out if not line.startswith(" ")] == [
        "FAIL",
        "pass",
        "pass",
        "pass",
    ]
