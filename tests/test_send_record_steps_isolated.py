"""Each way a result is recorded fails alone: a full events disk skips nothing else.

The event log is /dev/full. Before, the events line was written before the
caller's callback, so its failure skipped the callback for every result
(and a failing suppression list skipped both); the summary did not say.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._jobs import make_job, people, send_tracked
from tests._scripted_smtp import Conn, ScriptedSMTP


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_failing_events_file_skips_no_other_record(tmp_path: Path) -> None:
    n = 6
    rows = people(n)
    gone = rows[0][0]

    def script(cmd: str, conn: Conn) -> str | None:
        if cmd.startswith(f"RCPT TO:<{gone}>"):
            return f"550 5.1.1 <{gone}>: Recipient address rejected: User unknown"
        return None

    job = make_job(tmp_path, rows, connections=1)
    with ScriptedSMTP(script=script) as server, open("/dev/full", "ab", buffering=0) as full:
        summary, results, in_store, _ = send_tracked(job, server.port, [gone], events=full)
    assert in_store == [gone]
    assert len(server.bodies) == n - 1
    assert sorted(r.recipient for r in results) == sorted(r[0] for r in rows)
    assert (summary.sent, summary.failed, summary.record_failures) == (n - 1, 1, n)
    assert summary.record_error.startswith("events file: OSError")
