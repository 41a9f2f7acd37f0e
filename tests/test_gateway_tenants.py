"""The gateway: a message accepted is stored, then delivered; tenants stay apart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import AccessError, Message, NotFoundError
from mailsflux.gateway import Gateway
from mailsflux.tenants import Principal
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, txt_record

ACME = Principal(tenant="acme", key_id="api_1", roles=frozenset({"send", "read"}))
GLOBEX = Principal(tenant="globex", key_id="api_2", roles=frozenset({"send", "read"}))
READER = Principal(tenant="acme", key_id="api_3", roles=frozenset({"read"}))


def test_accepted_messages_are_delivered_signed_and_tenants_cannot_cross(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go() -> None:
        gw = Gateway(
            two_tenants(tmp_path), data_dir=tmp_path / "data", delivery=delivery(server.url)
        )
        async with gw:
            mid = await gw.accept(
                ACME,
                Message(
                    sender="news@acme.example",
                    to="Ann <ann@x.test>",
                    subject="Hi {{n}}",
                    text="n={{n}}",
                    data={"n": 1},
                ),
            )
            for _ in range(200):
                if any(e.type == "delivered" for e in gw.message(ACME, mid)):
                    break
                await asyncio.sleep(0.05)
            types = [e.type for e in gw.message(ACME, mid)]
            assert types == ["queued", "delivered"]
            assert gw.message(ACME, mid)[0].recipient == "ann@x.test"
            # Another tenant's message id is not found, not shown.
            with pytest.raises(NotFoundError):
                gw.message(GLOBEX, mid)
            assert gw.events(GLOBEX, 0, 100) == []
            assert [e.message_id for e in gw.events(ACME, 0, 100)] == [mid, mid]
            # A tenant cannot send from another's domain; a reader cannot send.
            with pytest.raises(AccessError):
                await gw.accept(
                    GLOBEX, Message(sender="x@acme.example", to="b@x.test", subject="s", text="t")
                )
            with pytest.raises(AccessError):
                await gw.accept(
                    READER, Message(sender="x@acme.example", to="b@x.test", subject="s", text="t")
                )
            assert gw.sender_allowed(ACME, "a@mail.acme.example")
            assert not gw.sender_allowed(ACME, "a@globex.example")

    with SMTPServer(handler) as server:
        asyncio.run(go())
    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.rcpt_tos == ["ann@x.test"]
    record = txt_record(tmp_path / "dkim" / "acme.txt")
    assert dkim_verify(got.data, record, selector="s1", domain="acme.example")
