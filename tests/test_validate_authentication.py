"""`mailsflux validate` reports what `send` would refuse: each failing
outbound authentication check is an error naming the record to publish."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DOMAIN, write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer


def test_validate_names_the_missing_dmarc_record(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    z = zone(record)
    del z[f"_dmarc.{DOMAIN}"]
    with DNSServer(z) as dns:
        job = write_job(tmp_path, relay="smtp+plain://127.0.0.1:1", dns_port=dns.port, key=key)
        proc = run_cli("validate", str(job))
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert errors == [
        f"{job}: error: dmarc: no DMARC record at _dmarc.{DOMAIN}; publish _dmarc.{DOMAIN} TXT"
        ' "v=DMARC1; p=quarantine; adkim=r; aspf=r"'
    ]
