"""An Engine configured from a TOML file: paths relative to it, errors naming it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import ConfigError, DeliveryResult, Engine, Message, RecipientError
from mailsflux.dkim.keyfiles import txt_path_for
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record


def test_a_toml_config_signs_with_the_from_domains_key(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as server:
        cfg = tmp_path / "conf" / "engine.toml"
        cfg.parent.mkdir()
        cfg.write_text(
            f"""name = "app"

[[dkim]]
domain = "first.example"
selector = "a"
key = "keys/a.pem"
generate = true
bits = 1024

[[dkim]]
domain = "second.example"
selector = "b"
key = "keys/b.pem"
algorithm = "ed25519-sha256"
generate = true

[delivery]
relay = "{server.url}"
ehlo_name = "mta.first.example"
"""
        )

        async def go() -> DeliveryResult:
            async with Engine(cfg) as engine:
                return await engine.send(
                    Message(
                        sender="x@mail.second.example", to="r@example.com", subject="s", text="t"
                    )
                )

        result = asyncio.run(go())
    assert result.status == "delivered"
    record = txt_record(txt_path_for(cfg.parent / "keys" / "b.pem"))
    data = handler.received[0].data
    assert b"d=second.example" in data and b"s=b;" in data
    assert dkim_verify(data, record, selector="b", domain="second.example")


def test_an_unknown_field_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "engine.toml"
    cfg.write_text("[delivery]\nconections = 3\n")
    with pytest.raises(ConfigError) as err:
        Engine(cfg)
    assert err.value.file == str(cfg)
    assert "conections" in str(err.value)


def test_a_missing_suppression_list_fails_the_start(tmp_path: Path) -> None:
    cfg = tmp_path / "engine.toml"
    cfg.write_text('suppression = "never.txt"\n')

    async def go() -> None:
        async with Engine(cfg):
            pass

    with pytest.raises(RecipientError) as err:
        asyncio.run(go())
    assert err.value.file == str(tmp_path / "never.txt")
