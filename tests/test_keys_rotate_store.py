"""`keys rotate-store`: every sealed value of a tenant's spool and log moves to a
new key, everything still opens, and a gateway started after it sends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Message
from mailsflux.gateway import Gateway
from mailsflux.spool import SpoolKeys
from mailsflux.tenants import Principal
from tests._cli import run_cli
from tests._gateway import delivery, sealed_key_ids, server_toml, two_tenants
from tests._mail import RecordingHandler, SMTPServer

ACME = Principal(tenant="acme", key_id="api_1", roles=frozenset({"send", "read"}))
GLOBEX = Principal(tenant="globex", key_id="api_2", roles=frozenset({"send", "read"}))


async def _send(gw: Gateway, who: Principal, sender: str, to: list[str]) -> None:
    mids = [await gw.accept(who, Message(sender=sender, to=a, subject="s", text="t")) for a in to]
    for _ in range(400):
        done = {e.message_id for e in gw.events(who, 0, 1000) if e.type == "delivered"}
        if done >= set(mids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all delivered: {sorted(set(mids) - done)}")


def test_rotate_store_reseals_every_tenant_value_under_the_new_key(tmp_path: Path) -> None:
    handler = RecordingHandler()
    data = tmp_path / "data"
    tenants = two_tenants(tmp_path)
    acme = [f"ann{i}@x.test" for i in range(5)]

    with SMTPServer(handler) as server:

        async def before() -> None:
            async with Gateway(tenants, data_dir=data, delivery=delivery(server.url)) as gw:
                await _send(gw, ACME, "news@acme.example", acme)
                await _send(gw, GLOBEX, "news@globex.example", ["bob@y.test"])

        asyncio.run(before())
        dirs = {t: data / "tenants" / t for t in ("acme", "globex")}
        old = {t: SpoolKeys.load(d / "spool" / "keys", create=False).ids for t, d in dirs.items()}
        for t, d in dirs.items():
            ids = sealed_key_ids(d)
            assert (
                ids["log"]
                and (ids["spool"] or t == "globex")
                and set(ids["spool"] + ids["log"]) == {old[t][0]}
            )

        got = run_cli("keys", "rotate-store", "--config", str(server_toml(tmp_path, data)))
        assert got.returncode == 0, got.stderr
        assert "tenant acme: new key" in got.stdout and "tenant globex: new key" in got.stdout

        for t, d in dirs.items():
            ring = SpoolKeys.load(d / "spool" / "keys", create=False).ids
            assert ring[1:] == old[t] and ring[0] not in old[t]  # new first, old kept
            ids = sealed_key_ids(d)
            assert len(ids["log"]) >= 2 * (5 if t == "acme" else 1)
            assert set(ids["spool"] + ids["log"]) == {ring[0]}

        async def after() -> None:
            async with Gateway(tenants, data_dir=data, delivery=delivery(server.url)) as gw:
                events = gw.events(ACME, 0, 1000)
                assert {e.recipient for e in events} == set(acme)
                assert {e.type for e in events} == {"queued", "delivered"}
                assert all(e.details.code == 250 for e in events if e.type == "delivered")
                assert {e.recipient for e in gw.events(GLOBEX, 0, 1000)} == {"bob@y.test"}
                await _send(gw, ACME, "news@acme.example", ["cy@x.test"])

        asyncio.run(after())
        new = SpoolKeys.load(dirs["acme"] / "spool" / "keys", create=False).current_id
        assert set(sealed_key_ids(dirs["acme"])["log"]) == {new}

    assert sorted(r for m in handler.received for r in m.rcpt_tos) == sorted(
        [*acme, "bob@y.test", "cy@x.test"]
    )
