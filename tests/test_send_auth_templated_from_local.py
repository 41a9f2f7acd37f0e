"""A From with merge tags only in its name and local part is checked against
its literal domain: the job passes and sends when that domain's records do."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DOMAIN, write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_templated_local_part_checks_the_literal_domain(tmp_path: Path) -> None:
    key, dkim = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer(zone(dkim)) as dns, SMTPServer(handler) as smtp:
        job = write_job(
            tmp_path,
            relay=smtp.url,
            dns_port=dns.port,
            key=key,
            sender="{{name}} <news-{{name}}@" + DOMAIN + ">",
            dkim_domain="other-sender.com",
        )
        proc = run_cli("send", str(job), "--no-spool")
    # Signed for another domain: the literal From domain does not align.
    assert proc.returncode != 0
    assert handler.received == []
    assert f"From {DOMAIN} does not align" in proc.stderr, proc.stderr
