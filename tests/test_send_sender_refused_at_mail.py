"""A refusal of MAIL FROM is about our sender: nobody is bounced or suppressed.

MAIL FROM names only our sender, so whatever words the refusal uses
("domain does not exist", "user unknown", "mailbox unavailable"), the
recipient is not to blame. Before, these replies matched the bad-domain and
bad-mailbox texts and put every recipient on the suppression list for good.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult
from tests._jobs import make_job, people
from tests._scripted_smtp import Conn, ScriptedSMTP

TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
"""


@pytest.mark.parametrize(
    "refusal",
    [
        "553 <news@sender.example>... Domain of sender address news@sender.example does not exist",
        "550 Sender domain does not exist",
        "550 MAIL FROM domain does not exist",
        "550 Envelope sender unknown: user unknown",
        "550 5.0.1 Sender denied (dns lookup failed)",
        # No word about the sender at all: only the stage tells.
        "550 Requested action not taken: mailbox unavailable",
    ],
)
def test_a_refused_mail_from_suppresses_nobody(tmp_path: Path, refusal: str) -> None:
    n = 8
    rows = people(n)
    refused: set[Conn] = set()

    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith("MAIL FROM:"):
            refused.add(conn)
            return refusal
        if cmd.startswith("RCPT TO:") and conn in refused:
            return "503 5.5.1 Error: need MAIL command"
        return None

    job = make_job(tmp_path, rows, connections=1)
    job.write_text(job.read_text() + TRACKING)
    results: list[DeliveryResult] = []
    with ScriptedSMTP(script=script) as server:
        prepared = Prepared.load(job)
        try:
            asyncio.run(
                send(
                    prepared,
                    Relay("127.0.0.1", server.port, "none"),
                    on_problem=lambda p: None,
                    on_result=results.append,
                )
            )
            assert prepared.store is not None
            suppressed = [r[0] for r in rows if prepared.store.is_suppressed(r[0])]
            assert prepared.suppressed is not None
            in_view = [r[0] for r in rows if r[0] in prepared.suppressed]
        finally:
            prepared.close()
    assert suppressed == [] and in_view == []
    assert len(results) == n
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
