"""A server that stops answering mid-DATA: the client times out, retries, loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult
from tests._jobs import make_job, people
from tests._scripted_smtp import ScriptedSMTP


def test_hung_session_times_out_and_the_message_is_retried(tmp_path: Path) -> None:
    results: list[DeliveryResult] = []
    with ScriptedSMTP(hang_first_session=True) as server:
        job = make_job(tmp_path, people(5), connections=1, attempts=3)
        text = job.read_text().replace(
            "smtp+plain://127.0.0.1:1", f"smtp+plain://127.0.0.1:{server.port}"
        )
        job.write_text(text.replace("timeout = 10", "timeout = 1\ndata_timeout = 1"))
        prepared = Prepared.load(job)
        summary = asyncio.run(
            send(prepared, on_problem=lambda p: None, on_result=results.append, check_relay=False)
        )
        prepared.close()
    assert summary.sent == 5 and summary.deferred == 0
    assert server.sessions >= 2
    hung = [r for r in results if r.attempts > 1]
    assert hung, "the message caught in the hung session was retried"
    # Every recipient's message reached the server; the hung one possibly twice.
    subjects = {b.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for b in server.bodies}
    assert len(subjects) == 5
