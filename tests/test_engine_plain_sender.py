"""``template=False`` sends the sender as given too, braces and all, one-off and in a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from mailsflux import Batch, DeliveryResult, Engine, JobSummary, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer, parse

SENDER = "{{team}} <news@sender.example>"


def test_a_plain_message_keeps_braces_in_its_sender(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def go() -> tuple[DeliveryResult, JobSummary]:
            async with Engine(engine_config(tmp_path, server.url)) as engine:
                template = Message(sender=SENDER, to="", subject="s", text="t", template=False)
                one = await engine.send(msgspec.structs.replace(template, to="a@example.com"))
                handle = await engine.submit(Batch(template=template, recipients=["b@example.com"]))
                return one, await handle.wait()

        one, summary = asyncio.run(go())
    assert one.status == "delivered" and summary.sent == 1
    by_rcpt = {r.rcpt_tos[0]: r for r in handler.received}
    for rcpt in ("a@example.com", "b@example.com"):
        got = by_rcpt[rcpt]
        assert got.mail_from == "news@sender.example"
        sender = parse(got.data)["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("{{team}}", "news@sender.example")
