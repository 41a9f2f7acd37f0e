"""A finished message (SMTP submission path): every From address must be the
tenant's, parsed as RFC 5322 says; a bad recipient stores no copy at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsflux import AccessError, AddressError
from mailsflux.gateway import Gateway
from mailsflux.tenants import Principal
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer

ACME = Principal(tenant="acme", key_id="k", roles=frozenset({"send"}))


def raw(from_: str) -> bytes:
    return f"From: {from_}\r\nTo: x@example.net\r\nSubject: s\r\n\r\nbody\r\n".encode()


def test_raw_messages_are_checked_whole(tmp_path: Path) -> None:
    handler = RecordingHandler()

    async def go(url: str) -> None:
        async with Gateway(two_tenants(tmp_path), data_dir=tmp_path / "d",
                           delivery=delivery(url)) as gw:  # fmt: skip
            for bad in (
                '"CEO <ceo@acme.example>" <news@globex.example>',  # the quoted one is a name
                "a@acme.example, b@globex.example",  # every author counts
            ):
                with pytest.raises(AccessError):
                    await gw.accept_raw(ACME, "a@acme.example", ["x@example.net"], raw(bad))
            with pytest.raises(AddressError):
                await gw.accept_raw(
                    ACME, "a@acme.example", ["ok@example.net", "not an address"],
                    raw("a@acme.example"),
                )  # fmt: skip
            ids = await gw.accept_raw(
                ACME,
                "a@acme.example",
                ["y@example.net", "z@example.net"],
                raw("Acme <a@acme.example>"),
            )
            assert len(ids) == 1 and ids[0].endswith("@acme.example")
            for _ in range(100):
                if len(handler.received) >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)

    with SMTPServer(handler) as smtp:
        asyncio.run(go(smtp.url))
    got = sorted(r for m in handler.received for r in m.rcpt_tos)
    assert got == ["y@example.net", "z@example.net"]  # nothing of the refused ones
