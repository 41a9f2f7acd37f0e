"""Small job directories for the tests, written into tmp_path."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mailsflux.delivery.mx import MXResolver
from mailsflux.delivery.relay import Relay
from mailsflux.delivery.scheduler import Scheduler
from mailsflux.jobs import Prepared, send
from mailsflux.types import DeliveryResult, JobSummary, Problem, RenderedMessage

HTML = """<html><body>
<p>Hello {{first_name}},</p>
<p>Your plan: <b>{{plan}}</b>. <a href="https://example.com/start?u={{email}}">Start here</a></p>
</body></html>
"""
TEXT = "Hello {{first_name}},\n\nYour plan: {{plan}}.\nStart: https://example.com/start\n"


def make_job(
    tmp_path: Path,
    rows: Sequence[Sequence[str]],
    *,
    columns: Sequence[str] = ("email", "name", "first_name", "plan"),
    relay: str = "smtp+plain://127.0.0.1:1",
    subject: str = "Hi {{first_name}}: your {{plan}} plan",
    sender: str = "Sender Co <news@sender.example>",
    html: str | None = HTML,
    text: str | None = TEXT,
    extra_message: str = "",
    algorithm: str = "rsa-sha256",
    connections: int = 2,
    attempts: int = 3,
    ehlo_name: str | None = "mta.sender.example",
) -> Path:
    d = tmp_path / "job"
    d.mkdir(exist_ok=True)
    with (d / "recipients.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    lines = ["[message]", f"from = {sender!r}", f"subject = {subject!r}"]
    if html is not None:
        (d / "body.html").write_text(html, encoding="utf-8")
        lines.append('html = "body.html"')
    if text is not None:
        (d / "body.txt").write_text(text, encoding="utf-8")
        lines.append('text = "body.txt"')
    if extra_message:
        lines.append(extra_message)
    lines += [
        "",
        "[recipients]",
        'file = "recipients.csv"',
        "",
        "[dkim]",
        'domain = "sender.example"',
        'selector = "t1"',
        'key = "dkim/t1.pem"',
        f'algorithm = "{algorithm}"',
        "generate = true",
        "bits = 1024" if algorithm == "rsa-sha256" else "",
        "",
        "[delivery]",
        f'relay = "{relay}"',
        f"connections = {connections}",
        f"attempts = {attempts}",
        "timeout = 10",
        "retry_initial = 0.05",
    ]
    if ehlo_name is not None:
        # Not this host's name, which may have no dot and draw a warning.
        lines.append(f'ehlo_name = "{ehlo_name}"')
    p = d / "job.toml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def people(n: int, domains: Sequence[str] = ("example.com", "example.org")) -> list[list[str]]:
    return [
        [f"user{i}@{domains[i % len(domains)]}", f"User {i}", f"Name{i}", ("Team", "Pro")[i % 2]]
        for i in range(n)
    ]


def messages(n: int, prefix: str = "r") -> list[RenderedMessage]:
    """``n`` small ready-made messages to ``{prefix}{i}@example.com``, for scheduler tests."""
    return [
        RenderedMessage(
            mail_from="s@sender.example",
            rcpt_to=f"{prefix}{i}@example.com",
            data=b"Subject: %d\r\n\r\nbody\r\n" % i,
            message_id=f"{prefix}{i}",
        )
        for i in range(n)
    ]


def send_job(job: Path) -> tuple[JobSummary, list[Problem]]:
    """Load ``job``, send it in this process, and return the summary and every problem."""
    problems: list[Problem] = []
    prepared = Prepared.load(job)
    try:
        summary = asyncio.run(send(prepared, on_problem=problems.append))
    finally:
        prepared.close()
    return summary, problems


#: A [tracking] table: its event store keeps the suppression list.
TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
"""


class TrackedSend(NamedTuple):
    summary: JobSummary
    results: list[DeliveryResult]
    #: The given addresses the tracking store, and the job's in-memory view
    #: of it, suppress once the send is over.
    in_store: list[str]
    in_view: list[str]


def send_tracked(job: Path, port: int, addresses: Sequence[str], **options: Any) -> TrackedSend:
    """Add :data:`TRACKING` to ``job``, send it through 127.0.0.1:``port`` in
    this process (``options`` go to ``send``), and say who is suppressed now."""
    job.write_text(job.read_text() + TRACKING)
    results: list[DeliveryResult] = []
    prepared = Prepared.load(job)
    try:
        summary = asyncio.run(
            send(
                prepared,
                Relay("127.0.0.1", port, "none"),
                on_problem=lambda p: None,
                on_result=results.append,
                **options,
            )
        )
        assert prepared.store is not None and prepared.suppressed is not None
        in_store = [a for a in addresses if prepared.store.is_suppressed(a)]
        in_view = [a for a in addresses if a in prepared.suppressed]
    finally:
        prepared.close()
    return TrackedSend(summary, results, in_store, in_view)


def schedule(port: int, msgs: Sequence[RenderedMessage], **options: Any) -> list[DeliveryResult]:
    """Deliver ``msgs`` with a Scheduler relaying to 127.0.0.1:``port``; its results."""
    results: list[DeliveryResult] = []

    async def go() -> None:
        s = Scheduler(MXResolver(smarthost=("127.0.0.1", port)), results.append, **options)
        for m in msgs:
            await s.submit(m)
        await s.close()

    asyncio.run(go())
    return results
