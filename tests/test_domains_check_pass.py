"""`mailsflux domains check`: every record published and right -> a table of passes, exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailsflux.cli import main
from tests._auth import DKIM_NAME, DOMAIN, RELAY_IP, cli_args, write_key, zone
from tests._dns import DNSServer


def test_all_records_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, record = write_key(tmp_path)
    with DNSServer(zone(record)) as dns:
        assert main(cli_args(dns.port, key)) == 0
        out = capsys.readouterr().out
        assert main(cli_args(dns.port, key, "--json")) == 0
        doc = json.loads(capsys.readouterr().out)
        # SPF was evaluated (pyspf asked our server for the domain's TXT).
        assert dns.count(DOMAIN, "TXT") >= 1 and dns.count(DKIM_NAME, "TXT") >= 1
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert rows == {"dkim": "pass", "spf": "pass", "dmarc": "pass", "alignment": "pass"}
    assert f"{RELAY_IP} pass" in out
    assert doc["ok"] is True and [f["check"] for f in doc["findings"]] == [
        "dkim",
        "spf",
        "dmarc",
        "alignment",
    ]
