"""Engine.send: one message built in code reaches a real SMTP server, signed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Attachment, DeliveryResult, Engine, Message
from mailsflux.dkim.keyfiles import txt_path_for
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record


def test_one_message_is_delivered_signed_with_its_parts(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)

        async def go() -> DeliveryResult:
            async with Engine(config) as engine:
                return await engine.send(
                    Message(
                        sender="Sender Co <news@sender.example>",
                        to="Ada Lovelace <ada@example.com>",
                        subject="Welcome, {{first}}",
                        html='<p>Hi {{first}}</p><img src="cid:logo">',
                        text="Hi {{first}}",
                        data={"first": "Ada"},
                        headers={"X-Campaign": "welcome"},
                        attachments=[Attachment(content=b"a,b\n1,2\n", filename="data.csv")],
                        inline_images={"logo": Attachment(content=logo)},
                        tags=("welcome",),
                        metadata={"user": "42"},
                    )
                )

        result = asyncio.run(go())
    assert result.status == "delivered"
    assert result.code == 250 and result.enhanced_status == "2.0.0"
    assert "queued" in result.reply
    assert result.tags == ("welcome",) and result.metadata == {"user": "42"}
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.mail_from == "news@sender.example" and got.rcpt_tos == ["ada@example.com"]
    record = txt_record(txt_path_for(tmp_path / "dkim" / "t1.pem"))
    assert dkim_verify(got.data, record, selector="t1", domain="sender.example")
    msg = parse(got.data)
    assert msg["To"].addresses[0].display_name == "Ada Lovelace"
    assert msg["Subject"] == "Welcome, Ada"
    assert msg["X-Campaign"] == "welcome"
    assert msg["Message-ID"].strip("<>") == result.message_id
    assert "Hi Ada" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    names = {p.get_filename() for p in msg.walk() if p.get_filename()}
    assert names == {"data.csv", "logo.png"}
