"""MTA-STS enforce, and the MX host named by the policy offers STARTTLS with a
certificate valid for its name (issued by the job's tls_ca): delivered over
TLS, the session counted as a success of policy "sts", and the policy cached
in the spool directory for the next run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, PolicyServer, mx_job, policy
from tests._tls import TLSServer


def test_enforce_with_good_tls_delivers(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    body = policy("enforce", "mx.example.com")
    with (
        TLSServer(handler, ca.server_context(["mx.example.com"])) as smtp,
        PolicyServer(ca.server_context(["mta-sts.example.com"]), body) as web,
    ):
        zone = {
            "example.com": {"MX": ["10 mx.example.com."]},
            "mx.example.com": {"A": ["127.0.0.1"]},
            "_mta-sts.example.com": {"TXT": ['"v=STSv1; id=20261129"']},
            "mta-sts.example.com": {"A": [web.address]},
        }
        with DNSServer(zone) as dns:
            job = mx_job(
                tmp_path,
                [["a@example.com", "A", "A", "Team"]],
                smtp_port=smtp.port,
                dns_port=dns.port,
                ca=ca,
            )
            summary, _ = send_job(job)
    assert (summary.sent, summary.deferred) == (1, 0)
    assert [r.rcpt_tos for r in handler.received] == [["a@example.com"]]
    counts = summary.tls["example.com"]
    assert (counts.policy, counts.success, counts.failure) == ("sts", 1, 0)
    assert web.requests == 1
    cache = json.loads((Path(os.environ["MAILSFLUX_SPOOL"]) / "mta-sts.json").read_text())
    assert cache["example.com"]["mode"] == "enforce"
    assert cache["example.com"]["id"] == "20261129"
