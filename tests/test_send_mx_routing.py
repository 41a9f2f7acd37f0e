"""Direct MX delivery: DNS on loopback decides where mail goes, sites share queues.

Two domains with the same MX host share one site; a domain whose first MX
host is down fails over to the next; null MX and NXDOMAIN bounce at once,
classified, without a connection attempt.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult
from tests._dns import DNSServer
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])


def test_mx_routing_failover_and_dns_failures(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        zone = {
            "example.com": {"MX": ["10 mx.shared.test."]},
            "googlemail.example": {"MX": ["10 mx.shared.test."]},
            # The preferred host (127.0.0.2) refuses connections; the backup answers.
            "failover.example": {"MX": ["5 down.test.", "10 mx.shared.test."]},
            "down.test": {"A": ["127.0.0.2"]},
            "mx.shared.test": {"A": ["127.0.0.1"]},
            "null.example": {"MX": ["0 ."]},
        }
        rows = [
            ["a@example.com", "A", "A", "Team"],
            ["b@googlemail.example", "B", "B", "Team"],
            ["c@failover.example", "C", "C", "Team"],
            ["d@null.example", "D", "D", "Team"],
            ["e@nowhere.example", "E", "E", "Team"],
        ]
        results: dict[str, DeliveryResult] = {}
        with DNSServer(zone) as dns:
            job = make_job(tmp_path, rows)
            text = job.read_text().replace('relay = "smtp+plain://127.0.0.1:1"\n', "")
            text += f'tls = "none"\nmx_port = {smtp.port}\nnameservers = ["127.0.0.1:{dns.port}"]\n'
            job.write_text(text)
            prepared = Prepared.load(job)
            assert prepared.job.relay() is None
            summary = asyncio.run(
                send(
                    prepared,
                    on_problem=lambda p: None,
                    on_result=lambda r: results.__setitem__(r.recipient, r),
                )
            )
            prepared.close()
            assert dns.count("example.com", "MX") == 1
    assert (summary.sent, summary.failed) == (3, 2)
    assert sorted(r.rcpt_tos[0] for r in handler.received) == [
        "a@example.com",
        "b@googlemail.example",
        "c@failover.example",
    ]
    null = results["d@null.example"]
    assert (null.status, null.code, null.enhanced_status) == ("bounced", 556, "5.1.10")
    assert null.category == "bad_domain"
    nx = results["e@nowhere.example"]
    assert (nx.status, nx.enhanced_status, nx.category) == ("bounced", "5.1.2", "bad_domain")
