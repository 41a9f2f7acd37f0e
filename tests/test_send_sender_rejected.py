"""A refusal of our own sender address stops the site; it bounces and suppresses nobody.

``553 5.1.8`` is the sender's address (RFC 3463), as Postfix's
reject_unknown_sender_domain says it at RCPT time. Before, every
recipient went on the suppression list for good.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsflux.delivery.scheduler import STOP_AFTER
from tests._jobs import make_job, people, send_tracked
from tests._scripted_smtp import Conn, ScriptedSMTP

REFUSAL = "553 5.1.8 <news@sender.example>: Sender address rejected: Domain not found"


def refuse_sender(cmd: str, conn: Conn) -> str | None:
    return REFUSAL if cmd.startswith("RCPT TO:") else None


def test_sender_refusal_stops_the_site_and_suppresses_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 20
    rows = people(n)
    job = make_job(tmp_path, rows, connections=1)
    with ScriptedSMTP(script=refuse_sender) as server:
        summary, results, suppressed, _ = send_tracked(job, server.port, [r[0] for r in rows])
    assert suppressed == []
    assert (summary.sent, summary.failed) == (0, n)
    assert sorted(r.recipient for r in results) == sorted(r[0] for r in rows)
    assert {(r.status, r.category) for r in results} == {("failed", "sender_config")}
    assert all("5.1.8" in r.reply for r in results)
    # The site stopped after STOP_AFTER refusals (plus the one message whose
    # envelope was already pipelined): the rest were never tried.
    rcpts = [line for line in server.lines if line.startswith("RCPT TO:")]
    assert STOP_AFTER <= len(rcpts) <= STOP_AFTER + 1
    untried = [r for r in results if r.reply.startswith("not sent: site stopped")]
    assert len(untried) == n - len(rcpts)
    stops = [line for line in capsys.readouterr().err.splitlines() if "stopped" in line]
    assert len(stops) == 1
    assert "sender setup" in stops[0] and "5.1.8" in stops[0]
