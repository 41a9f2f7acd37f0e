"""A Unicode [dkim] domain signs and sends: d= and the Message-ID use the
A-label (RFC 6376 section 3.5, RFC 8616), and the generated DNS record names it."""

from __future__ import annotations

from pathlib import Path

from mailsflux.dkim.keyfiles import txt_path_for
from tests._jobs import make_job, people, send_job
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record

A_LABEL = "xn--bcher-kva.example"


def test_unicode_signing_domain_sends_and_verifies(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        job = make_job(tmp_path, people(3), relay=smtp.url)
        job.write_text(
            job.read_text().replace('domain = "sender.example"', 'domain = "bücher.example"')
        )
        summary, problems = send_job(job)
    assert problems == []
    assert (summary.sent, summary.failed) == (3, 0)
    zone = txt_path_for(job.parent / "dkim" / "t1.pem")
    assert zone.read_text().startswith(f"t1._domainkey.{A_LABEL}. IN TXT (")
    assert len(handler.received) == 3
    for r in handler.received:
        assert dkim_verify(r.data, txt_record(zone), selector="t1", domain=A_LABEL)
        msg = parse(r.data)
        assert msg["Message-ID"].endswith(f"@{A_LABEL}>")
        assert f"d={A_LABEL};" in msg["DKIM-Signature"]
