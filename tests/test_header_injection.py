"""CR or LF reaching any header is refused, naming the header; the row is skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux.delivery.relay import Relay
from mailsflux.errors import ConfigError
from mailsflux.jobs import Prepared, send
from mailsflux.types import Problem
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer


def test_injected_rows_are_skipped_and_named(tmp_path: Path) -> None:
    rows = [
        ["a@example.com", "Ann", "Ann", "Team"],
        ["b@example.com", "Bob\r\nBcc: x@evil.example", "Bob", "Team"],  # To display name
        ["c@example.com", "Cy", "Cy\nBcc: x@evil.example", "Team"],  # Subject variable
        ["d@example.com", "Dee", "Dee", "Team"],
    ]
    handler = RecordingHandler()
    problems: list[Problem] = []
    with SMTPServer(handler) as server:
        job = Prepared.load(make_job(tmp_path, rows))
        summary = asyncio.run(
            send(job, Relay("127.0.0.1", server.port, "none"), on_problem=problems.append)
        )
    assert summary.sent == 2 and summary.skipped == 2
    by_line = {p.where.rsplit(":", 1)[1]: p.message for p in problems}
    assert "header To" in by_line["3"] and "CR, LF" in by_line["3"]
    assert "header Subject" in by_line["5"]  # row 3 spans lines 3-4
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ["a@example.com", "d@example.com"]
    for r in handler.received:
        assert b"evil" not in r.data


def test_custom_header_with_newline_is_refused_at_load(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        [["a@example.com", "A", "A", "T"]],
        extra_message='headers = { X-Tag = "a\\r\\nBcc: x@y.example" }',
    )
    with pytest.raises(ConfigError) as err:
        Prepared.load(job)
    assert err.value.field == "message.headers.X-Tag"
    assert "X-Tag" in str(err.value)


def test_reserved_headers_cannot_be_overridden(tmp_path: Path) -> None:
    job = make_job(
        tmp_path,
        [["a@example.com", "A", "A", "T"]],
        extra_message='headers = { "To" = "x@y.example" }',
    )
    with pytest.raises(ConfigError, match="set by Mailsflux"):
        Prepared.load(job)
