"""`keys rotate-store` while a gateway in the same process accepts and
delivers: every message is delivered, every event opens, and the gateway
seals with the new key once it has met it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from mailsflux import Message
from mailsflux.cli import main
from mailsflux.gateway import Gateway
from mailsflux.spool import SpoolKeys
from mailsflux.tenants import Principal
from tests._gateway import delivery, sealed_key_ids, server_toml, two_tenants
from tests._mail import RecordingHandler, SMTPServer

ACME = Principal(tenant="acme", key_id="api_1", roles=frozenset({"send", "read"}))


def test_rotation_while_the_gateway_sends_loses_nothing(tmp_path: Path) -> None:
    handler = RecordingHandler()
    data = tmp_path / "data"
    directory = data / "tenants" / "acme"
    config = server_toml(tmp_path, data)
    sent: list[str] = []

    async def go() -> None:
        async with Gateway(
            two_tenants(tmp_path), data_dir=data, delivery=delivery(server.url)
        ) as gw:

            async def accept(n: int) -> str:
                sent.append(f"r{n}@x.test")
                m = Message(sender="news@acme.example", to=sent[-1], subject="s", text="t")
                return await gw.accept(ACME, m)

            for _ in range(20):
                await accept(len(sent))
            assert len(gw.events(ACME, 0, 100)) >= 20  # in the log's file (reads flush)
            old = SpoolKeys.load(directory / "spool" / "keys", create=False).current_id
            rotation = asyncio.create_task(
                asyncio.to_thread(main, ["keys", "rotate-store", "--config", str(config)])
            )
            while not rotation.done():  # sending goes on
                await accept(len(sent))
                await asyncio.sleep(0.01)
            assert rotation.result() == 0
            new = SpoolKeys.load(directory / "spool" / "keys", create=False).current_id
            assert new != old
            for _ in range(400):
                events = gw.events(ACME, 0, 10_000)
                if sum(e.type == "delivered" for e in events) == len(sent):
                    break
                await asyncio.sleep(0.05)
            # Every event opens (old key or new), with its address.
            assert sorted(e.recipient for e in events if e.type == "delivered") == sorted(sent)
            assert sorted(e.recipient for e in events if e.type == "queued") == sorted(sent)
            # Having met the new key, the gateway seals with it.
            last = await accept(len(sent))
            assert {e.recipient for e in gw.message(ACME, last)} == {sent[-1]}  # written now
            con = sqlite3.connect(directory / "log.db")
            (raw,) = con.execute(
                "SELECT recipient FROM events WHERE message_id = ?", (last,)
            ).fetchone()
            con.close()
            assert bytes(raw[1:5]).hex() == new

    with SMTPServer(handler) as server:
        asyncio.run(go())
    ring = SpoolKeys.load(directory / "spool" / "keys", create=False).ids
    assert set(sealed_key_ids(directory)["log"]) <= set(ring)
    assert {r for m in handler.received for r in m.rcpt_tos} >= set(sent[:-1])
