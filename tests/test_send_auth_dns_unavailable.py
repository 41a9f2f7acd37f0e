"""DNS that does not answer under "enforce": the job refuses in one line saying
so and how to send anyway; with "warn" it sends and warns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._auth import DOMAIN, write_job, write_key
from tests._cli import run_cli
from tests._dns import SERVFAIL, DNSServer
from tests._mail import RecordingHandler, SMTPServer


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_unreachable_dns(tmp_path: Path, mode: str) -> None:
    key, _ = write_key(tmp_path)
    handler = RecordingHandler()
    zone = {name: SERVFAIL for name in (DOMAIN, f"s1._domainkey.{DOMAIN}", f"_dmarc.{DOMAIN}")}
    with DNSServer(zone) as dns, SMTPServer(handler) as smtp:
        job = write_job(tmp_path, relay=smtp.url, dns_port=dns.port, key=key, authentication=mode)
        proc = run_cli("send", str(job), "--no-spool")
    errors = [ln for ln in proc.stderr.splitlines() if "DNS unavailable" in ln]
    assert len(errors) == 1 and 'authentication = "warn" (or "off")' in errors[0]
    assert "Traceback" not in proc.stderr
    if mode == "enforce":
        assert proc.returncode != 0 and handler.received == []
        assert errors[0].startswith("mailsflux: error: ")
    else:
        assert proc.returncode == 0, proc.stderr
        assert len(handler.received) == 3 and ": warning: " in errors[0]
