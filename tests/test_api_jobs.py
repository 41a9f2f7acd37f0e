"""POST /v1/jobs: a template and JSON rows become a job; its counts and cancel."""

from __future__ import annotations

import time
from pathlib import Path

from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, job_finished, new_key, server_config

TEMPLATE = {"sender": "News <news@acme.example>", "subject": "Hi {{first}}", "text": "{{first}}"}


def test_a_job_sends_every_row_and_reports_counts(tmp_path: Path) -> None:
    handler = RecordingHandler()
    rows = [{"email": f"r{i}@example.net", "first": f"R{i}"} for i in range(40)]
    rows.append({"email": "bad address", "first": "x"})
    rows.append("plain@example.net")
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            s, _, b = srv.call(
                "POST", "/v1/jobs", {"template": TEMPLATE, "recipients": rows, "name": "w"}, key=key
            )
            assert s == 202, b
            jid = b["id"]
            job = job_finished(srv, jid, key)
            assert job["rows"] == 42 and job["handed_on"] == 42
            assert job["counts"] == {"queued": 40, "delivered": 40, "rejected": 2}
            s, _, b = srv.call("POST", f"/v1/jobs/{jid}/cancel", key=key)
            assert s == 200 and b["state"] == "finished"
    subjects = sorted(r.data.split(b"Subject: ")[1].split(b"\r\n")[0] for r in handler.received)
    assert len(subjects) == 40 and b"Hi R7" in subjects


def test_a_cancelled_job_stops_handing_on_rows(tmp_path: Path) -> None:
    # Enough rows that the job is still handing them on when cancelled.
    handler = RecordingHandler()
    rows = [f"r{i}@example.net" for i in range(40000)]
    with SMTPServer(handler) as smtp:
        config = server_config(tmp_path / "data", list(two_tenants(tmp_path)), delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            plain = {**TEMPLATE, "subject": "Hi", "text": "t"}
            s, _, b = srv.call("POST", "/v1/jobs", {"template": plain, "recipients": rows},
                               key=key)  # fmt: skip
            assert s == 202
            time.sleep(0.3)
            s, _, job = srv.call("POST", f"/v1/jobs/{b['id']}/cancel", key=key)
            assert s == 200 and job["state"] == "cancelled"
            assert job["handed_on"] < 40000
            handed = job["handed_on"]
            time.sleep(0.3)
            s, _, job = srv.call("GET", f"/v1/jobs/{b['id']}", key=key)
            assert job["handed_on"] == handed and job["counts"]["queued"] <= handed
