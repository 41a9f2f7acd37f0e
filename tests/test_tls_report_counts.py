"""The TLS-RPT-style counts reach the operator: `mailsflux send` to a domain
whose MTA-STS policy (enforce) its MX host cannot meet (no STARTTLS) defers
the message, prints the domain's policy line in the summary, and
`mailsflux report` shows the same counts, kept beside the job's spool."""

from __future__ import annotations

import json
from pathlib import Path

from tests._cli import run_cli
from tests._dns import DNSServer
from tests._mail import SMTPServer
from tests._policy import CA, MailRecorder, mx_job, policy, sts_zone


def test_summary_and_report_show_tls_counts(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    handler = MailRecorder()
    with (
        SMTPServer(handler) as smtp,
        ca.policy_server(policy("enforce", "mx.example.com")) as web,
    ):
        with DNSServer(sts_zone(web)) as dns:
            rows = [["a@example.com", "A", "A", "Team"], ["b@example.com", "B", "B", "Pro"]]
            job = mx_job(tmp_path, rows, smtp_port=smtp.port, dns_port=dns.port, ca=ca)
            sent = run_cli("send", str(job))
    assert handler.mail_from == []
    line = next(x for x in sent.stdout.splitlines() if x.strip().startswith("example.com  sts"))
    assert "starttls-not-supported" in line, sent.stdout

    out = run_cli("report", "job", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["totals"]["deferred"] == 2
    tls = doc["tls"]["example.com"]
    assert tls["policy"] == "sts"
    assert tls["success"] == 0
    assert tls["failures"]["starttls-not-supported"] == tls["failure"] >= 1
    text = run_cli("report", "job")
    assert "TLS policy (sessions ok / failed):" in text.stdout
