"""Two domains with MTA-STS policies share one MX host (one site) limited to
one connection: each domain has its own policy queue, but both count on the
site's connection limit, so the MX host never sees two sessions at once. The
MX holds every message's DATA until a second session shows up (or a while
passes), so two queues each with their own limit would be caught."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests._dns import DNSServer
from tests._jobs import send_job
from tests._policy import CA, MailRecorder, PolicyServer, mx_job, policy
from tests._tls import TLSServer


class Overlap(MailRecorder):
    """Counts sessions in a transaction at once, and the most seen."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.most = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.active += 1  # the server's loop is one thread
        self.most = max(self.most, self.active)
        for _ in range(30):  # up to 1.5 s for another session to overlap
            if self.most > 1:
                break
            await asyncio.sleep(0.05)
        self.active -= 1
        return await super().handle_DATA(server, session, envelope)


def test_policy_queues_share_their_sites_connection_limit(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    body = policy("enforce", "mx.example.com")
    webs = [PolicyServer(ca.server_context([f"mta-sts.example.{t}"]), body) for t in ("com", "net")]
    mx = Overlap()
    with webs[0], webs[1], TLSServer(mx, ca.server_context(["mx.example.com"])) as smtp:
        zone: dict[str, object] = {"mx.example.com": {"A": ["127.0.0.1"]}}
        for tld, web in zip(("com", "net"), webs, strict=True):
            zone[f"example.{tld}"] = {"MX": ["10 mx.example.com."]}
            zone[f"_mta-sts.example.{tld}"] = {"TXT": ['"v=STSv1; id=1"']}
            zone[f"mta-sts.example.{tld}"] = {"A": [web.address]}
        rows = [[f"u{i}@example.{t}", "A", "A", "Team"] for i in range(2) for t in ("com", "net")]
        with DNSServer(zone) as dns:
            job = mx_job(tmp_path, rows, smtp_port=smtp.port, dns_port=dns.port, ca=ca)
            job.write_text(job.read_text().replace("connections = 2", "connections = 1"))
            summary, _ = send_job(job)
    assert (summary.sent, summary.deferred) == (4, 0)
    assert {summary.tls[d].policy for d in ("example.com", "example.net")} == {"sts"}
    assert mx.most == 1
