"""``template=False``: subject and bodies are sent as given, braces and all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer, parse

SUBJECT = "Your {{code}} & <more>"
HTML = "<p>Use {{code}} or {{{raw}}} in templates &amp; <b>bold</b></p>"
TEXT = "Literal {{#section}}x{{/section}} stays."


def test_plain_content_is_not_rendered(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def go() -> list[DeliveryResult]:
            async with Engine(engine_config(tmp_path, server.url)) as engine:
                return [
                    await engine.send(
                        Message(
                            sender="a@sender.example",
                            to=f"Reader {i} <r{i}@example.com>",
                            subject=SUBJECT + str(i),
                            html=HTML + str(i),
                            text=TEXT + str(i),
                            template=False,
                        )
                    )
                    for i in range(2)  # the second reuses the first's composer
                ]

        results = asyncio.run(go())
    assert [r.status for r in results] == ["delivered", "delivered"]
    by_rcpt = {r.rcpt_tos[0]: parse(r.data) for r in handler.received}
    for i in range(2):
        msg = by_rcpt[f"r{i}@example.com"]
        assert msg["Subject"] == SUBJECT + str(i)
        assert msg["To"].addresses[0].display_name == f"Reader {i}"
        assert msg.get_body(("html",)).get_content().strip() == HTML + str(i)  # type: ignore[union-attr]
        assert msg.get_body(("plain",)).get_content().strip() == TEXT + str(i)  # type: ignore[union-attr]
