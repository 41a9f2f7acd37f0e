"""A message that cannot be built raises the error naming its field; nothing is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from msgspec.structs import replace

from mailsflux import (
    AddressError,
    Config,
    ConfigError,
    Engine,
    MailsfluxError,
    Message,
    MissingVariableError,
)
from tests._engine import engine_config
from tests._mail import RecordingHandler, SMTPServer

GOOD = Message(sender="a@sender.example", to="r@example.com", subject="Hi {{n}}", text="t")


@pytest.mark.parametrize(
    ("bad", "error", "says"),
    [
        (replace(GOOD, data={}), MissingVariableError, "message.subject: missing variable 'n'"),
        (replace(GOOD, to="not an address"), AddressError, ""),
        (replace(GOOD, headers={"X-Tag": "a\r\nB: x"}), ConfigError, "<message>: header X-Tag"),
        (replace(GOOD, text=None), ConfigError, "html, text or both"),
    ],
)
def test_a_bad_message_raises_and_sends_nothing(
    tmp_path: Path, bad: Message, error: type[MailsfluxError], says: str
) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:

        async def go() -> None:
            async with Engine(engine_config(tmp_path, server.url)) as engine:
                with pytest.raises(error) as err:
                    await engine.send(bad)
                assert says in str(err.value)
                ok = await engine.send(replace(GOOD, data={"n": "1"}))
                assert ok.status == "delivered"

        asyncio.run(go())
    assert len(handler.received) == 1


def test_without_a_dkim_key_nothing_is_sent(tmp_path: Path) -> None:
    async def go() -> None:
        async with Engine(Config(), relay="smtp+plain://127.0.0.1:9") as engine:
            with pytest.raises(ConfigError, match="no DKIM key"):
                await engine.send(GOOD)

    asyncio.run(go())
