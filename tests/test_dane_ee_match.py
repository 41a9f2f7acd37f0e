"""DANE-EE: the domain's MX answer and the MX host's TLSA record are
DNSSEC-validated (the resolver sets AD), and the record (3 1 1) matches the
server's key: delivered over STARTTLS, although the certificate is
self-signed and names another host (RFC 7672 3.1.1: DANE-EE checks neither).
The TLSA name carries the port mail goes to (the test server's); DANE takes
precedence, so no MTA-STS record is even asked for."""

from __future__ import annotations

from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, dane_zone, mx_job, spki_sha256
from tests._tls import TLSServer


def test_dane_ee_match_delivers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with TLSServer(handler, ca.server_context(["unrelated.test"], self_signed=True)) as smtp:
        tlsa = f"3 1 1 {spki_sha256(tmp_path / 'unrelated.test.crt')}"
        with DNSServer(dane_zone(smtp.port, tlsa)) as dns:
            job = mx_job(tmp_path, [["a@example.com", "A", "A", "Team"]],
                         smtp_port=smtp.port, dns_port=dns.port, ca=None)  # fmt: skip
            summary, _ = send_job(job)
            assert dns.count("_mta-sts.example.com") == 0
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success, counts.failure) == ("dane", 1, 0)
