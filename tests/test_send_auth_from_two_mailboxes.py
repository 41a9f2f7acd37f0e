"""A From that hides a second mailbox behind a reserved one (``News
<news@example.com>, <ceo@paypal.com>``: the composer keeps the last address)
is refused before any DNS query or delivery, not exempted as example.com."""

from __future__ import annotations

from pathlib import Path

from tests._auth import write_job, write_key
from tests._cli import run_cli
from tests._dns import REFUSED, DNSServer
from tests._mail import RecordingHandler, SMTPServer


def test_from_with_two_mailboxes_is_refused(tmp_path: Path) -> None:
    key, _ = write_key(tmp_path)
    handler = RecordingHandler()
    with DNSServer({"paypal.com": REFUSED}) as dns, SMTPServer(handler) as smtp:
        job = write_job(
            tmp_path,
            relay=smtp.url,
            dns_port=dns.port,
            key=key,
            sender="News <news@example.com>, <ceo@paypal.com>",
            dkim_domain="paypal.com",
        )
        proc = run_cli("send", str(job), "--no-spool")
    assert proc.returncode != 0
    assert handler.received == []
    assert "reserved domain" not in proc.stderr
    assert "message.from must be one mailbox" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
