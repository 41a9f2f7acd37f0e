"""`mailsflux send` whose DKIM key is not the one in DNS: the job refuses to
start, names the TXT record to publish, exits non-zero and sends nothing."""

from __future__ import annotations

from pathlib import Path

from tests._auth import DKIM_NAME, write_job, write_key, zone
from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_send_refuses_and_sends_nothing(tmp_path: Path) -> None:
    key, record = write_key(tmp_path)
    _, other = write_key(tmp_path, "old.pem")
    handler = RecordingHandler()
    with DNSServer(zone(other)) as dns, SMTPServer(handler) as smtp:
        job = write_job(tmp_path, relay=smtp.url, dns_port=dns.port, key=key)
        proc = run_cli("send", str(job), "--no-spool")
        assert dns.count(DKIM_NAME, "TXT") >= 1
    assert proc.returncode != 0
    assert handler.received == [] and handler.attempts == {}
    assert "Traceback" not in proc.stderr
    assert "fails outbound authentication" in proc.stderr
    assert f'publish {DKIM_NAME} TXT "{record}"' in proc.stderr
    assert 'authentication = "warn"' in proc.stderr
