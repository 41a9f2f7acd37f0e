"""A cancelled tenant: its keys stop at once, its data is deleted 90 days later
(the clock moved, not waited for), another tenant's data stays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mailsflux import Message
from mailsflux.gateway import Gateway, RetentionSpec
from mailsflux.tenants import KeyStore
from tests._cli import run_cli
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer

DAY = 86400.0
CONFIG = """
data_dir = "data"
[[tenants]]
name = "acme"
domains = ["acme.example"]
[[tenants]]
name = "globex"
domains = ["globex.example"]
"""


def test_cancel_revokes_now_and_the_sweep_deletes_later(tmp_path: Path) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text(CONFIG)
    data = tmp_path / "data"
    with KeyStore(data / "keys.db") as keys:
        _, acme_token = keys.create("acme", ["send", "read"])
        _, globex_token = keys.create("globex", ["send"])

    async def send_some(url: str) -> None:
        async with Gateway(two_tenants(tmp_path), data_dir=data, delivery=delivery(url)) as gw:
            with KeyStore(data / "keys.db") as keys:
                for token, domain in ((acme_token, "acme"), (globex_token, "globex")):
                    who = keys.authenticate(token)
                    assert who is not None
                    msg = Message(sender=f"a@{domain}.example", to="x@example.net",
                                  subject="s", text="t")  # fmt: skip
                    await gw.accept(who, msg)
            await asyncio.sleep(0.3)

    with SMTPServer(RecordingHandler()) as smtp:
        asyncio.run(send_some(smtp.url))
    assert (data / "tenants" / "acme" / "log.db").exists()

    out = run_cli("tenants", "cancel", "acme", "--config", str(cfg))
    assert out.returncode == 0 and "1 keys revoked" in out.stdout, out.stderr
    with KeyStore(data / "keys.db") as keys:
        assert keys.authenticate(acme_token) is None  # at once
        assert keys.authenticate(globex_token) is not None
    listed = run_cli("tenants", "list", "--config", str(cfg)).stdout
    assert "acme  cancelled" in listed and "globex  active" in listed

    # 89 days on, nothing is deleted; 91 days on, acme's data and keys are gone.
    early = run_cli("retention", "run", "--config", str(cfg), "--days-ahead", "89", "--json")
    assert early.returncode == 0 and '"tenants_deleted"' not in early.stdout
    assert (data / "tenants" / "acme").exists()
    late = run_cli("retention", "run", "--config", str(cfg), "--days-ahead", "91", "--json")
    assert late.returncode == 0 and '"tenants_deleted":1' in late.stdout, late.stdout
    assert not (data / "tenants" / "acme").exists()
    assert (data / "tenants" / "globex" / "log.db").exists()
    with KeyStore(data / "keys.db") as keys:
        assert [k.tenant for k in keys.list()] == ["globex"]
        assert keys.cancelled_tenants() == {}


def test_a_running_gateway_closes_and_deletes_a_cancelled_tenant(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def go(url: str) -> dict[str, int]:
        async with Gateway(two_tenants(tmp_path), data_dir=data, delivery=delivery(url)) as gw:
            spec = RetentionSpec()
            cancelled = {"acme": time.time()}
            assert "tenants_deleted" not in await gw.sweep(spec, time.time() + 89 * DAY, cancelled)
            done = await gw.sweep(spec, time.time() + 91 * DAY, cancelled)
            assert "acme" not in gw.tenants_open()
            return done

    with SMTPServer(RecordingHandler()) as smtp:
        done = asyncio.run(go(smtp.url))
    assert done["tenants_deleted"] == 1
    assert not (data / "tenants" / "acme").exists() and (data / "tenants" / "globex").exists()
