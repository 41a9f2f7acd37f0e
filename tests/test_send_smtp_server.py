"""A job delivered to a real SMTP server: every message signed, personal, intact."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux.delivery.relay import Relay
from mailsflux.dkim.keyfiles import txt_path_for
from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult, Problem
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record


def test_every_row_arrives_signed_and_personalised(tmp_path: Path) -> None:
    rows = people(60)
    rows.insert(10, ["broken-address", "X", "X", "Team"])
    rows.insert(20, ["short@example.com", "Short Row", "Short"])  # plan missing
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        job = Prepared.load(make_job(tmp_path, rows, connections=3))
        problems: list[Problem] = []
        results: list[DeliveryResult] = []
        summary = asyncio.run(
            send(
                job,
                Relay("127.0.0.1", server.port, "none"),
                on_problem=problems.append,
                on_result=results.append,
            )
        )
    assert summary.sent == 60 and summary.skipped == 2 and summary.failed == 0
    assert summary.per_domain == {"example.com": 30, "example.org": 30}
    assert {r.status for r in results} == {"delivered"}
    csv_path = job.recipients.path
    assert sorted(p.where for p in problems) == [f"{csv_path}:12", f"{csv_path}:22"]
    assert "plan" in next(p.message for p in problems if p.where.endswith(":22"))

    record = txt_record(txt_path_for(job.job.key_path))
    assert len(handler.received) == 60
    by_rcpt = {r.rcpt_tos[0]: r for r in handler.received}
    for i, row in enumerate(people(60)):
        got = by_rcpt[row[0]]
        assert got.mail_from == "news@sender.example"
        assert dkim_verify(got.data, record, selector="t1", domain="sender.example")
        msg = parse(got.data)
        assert msg["To"].addresses[0].addr_spec == row[0]
        assert msg["To"].addresses[0].display_name == row[1]
        assert msg["Subject"] == f"Hi {row[2]}: your {row[3]} plan"
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"Hello {row[2]}," in text and f"Hello {row[2]}," in html
        assert f"?u={row[0]}" in html
        assert msg["Message-ID"].endswith("@sender.example>")
        assert i == int(row[0][4 : row[0].index("@")])
    # Message-IDs are unique.
    assert len({parse(r.data)["Message-ID"] for r in handler.received}) == 60
