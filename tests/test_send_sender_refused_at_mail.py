"""A refusal of MAIL FROM is about our sender: nobody is bounced or suppressed.

MAIL FROM names only our sender, so whatever words the refusal uses
("domain does not exist", "user unknown", "mailbox unavailable"), the
recipient is not to blame. Before, these replies matched the bad-domain and
bad-mailbox texts and put every recipient on the suppression list for good.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._jobs import make_job, people, send_tracked
from tests._scripted_smtp import Conn, ScriptedSMTP


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
    with ScriptedSMTP(script=script) as server:
        _, results, suppressed, in_view = send_tracked(job, server.port, [r[0] for r in rows])
    assert suppressed == [] and in_view == []
    assert len(results) == n
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
