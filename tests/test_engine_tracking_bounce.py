"""Engine.send with tracking: links and List-Unsubscribe go through the tracker,
and a hard bounce suppresses the address for every later send."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import DeliveryResult, Engine, Message, Tracking
from mailsflux.dkim.keyfiles import txt_path_for
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record


def reply(address: str, attempt: int) -> str | None:
    return "550 5.1.1 <gone@example.com>: no such user" if address.startswith("gone@") else None


def mail(to: str) -> Message:
    return Message(
        sender="news@sender.example",
        to=to,
        subject="News",
        html='<a href="https://shop.example/sale">Sale</a> <a href="{{unsubscribe_url}}">x</a>',
    )


def test_tracked_send_and_a_hard_bounce_suppresses(tmp_path: Path) -> None:
    handler = RecordingHandler(reply)
    with SMTPServer(handler) as server:
        config = engine_config(tmp_path, server.url)
        config.tracking = Tracking(
            config="tracking.toml", generate=True, base_url="https://t.sender.example"
        )

        async def go() -> list[DeliveryResult]:
            async with Engine(config) as engine:
                out = [await engine.send(mail(to)) for to in ("ok@example.com", "gone@example.com")]
                out.append(await engine.send(mail("Gone@Example.com")))
            async with Engine(config) as engine:  # the store keeps it
                out.append(await engine.send(mail("gone@example.com")))
            return out

        ok, bounced, again, later = asyncio.run(go())
    assert ok.status == "delivered"
    assert (bounced.status, bounced.code, bounced.enhanced_status) == ("bounced", 550, "5.1.1")
    assert again.status == "suppressed" and later.status == "suppressed"
    assert handler.attempts["gone@example.com"] == 1
    assert [r.rcpt_tos for r in handler.received] == [["ok@example.com"]]
    data = handler.received[0].data
    record = txt_record(txt_path_for(tmp_path / "dkim" / "t1.pem"))
    assert dkim_verify(data, record, selector="t1", domain="sender.example")
    msg = parse(data)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "https://shop.example/sale" not in html
    assert "https://t.sender.example/c/" in html and "https://t.sender.example/u/" in html
    assert msg["List-Unsubscribe"].startswith("<https://t.sender.example/u/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
