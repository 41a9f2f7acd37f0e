"""Data residency: a tenant's spool, log and jobs live under its region's directory only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailsflux import Message
from mailsflux.gateway import Gateway
from mailsflux.tenants import Principal, Tenants
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer


def test_each_tenants_data_stays_in_its_region(tmp_path: Path) -> None:
    acme, globex = two_tenants(tmp_path)
    acme.region = "eu"
    globex.region = "sg"
    regions = {"eu": str(tmp_path / "eu"), "sg": str(tmp_path / "sg")}

    async def go(url: str) -> None:
        gw = Gateway(Tenants([acme, globex]), data_dir=tmp_path / "data",
                     delivery=delivery(url), regions=regions)  # fmt: skip
        async with gw:
            for tenant, domain in (("acme", "acme.example"), ("globex", "globex.example")):
                who = Principal(tenant=tenant, key_id="k", roles=frozenset({"send"}))
                await gw.accept(who, Message(sender=f"a@{domain}", to=f"{tenant}@example.net",
                                             subject="s", text="t"))  # fmt: skip
                rows = iter([b'"row@example.net"'])
                await gw.submit_job(who, Message(sender=f"a@{domain}", to="", subject="s",
                                                 text="t"), rows)  # fmt: skip
            await asyncio.sleep(0.5)

    with SMTPServer(RecordingHandler()) as smtp:
        asyncio.run(go(smtp.url))
    eu = {p.relative_to(tmp_path / "eu").as_posix() for p in (tmp_path / "eu").rglob("*")}
    sg = {p.relative_to(tmp_path / "sg").as_posix() for p in (tmp_path / "sg").rglob("*")}
    assert "tenants/acme/spool/spool.db" in eu and "tenants/acme/log.db" in eu
    assert "tenants/globex/spool/spool.db" in sg and "tenants/globex/log.db" in sg
    assert not any("globex" in p for p in eu) and not any("acme" in p for p in sg)
    assert any(p.startswith("tenants/acme/jobs/job_") for p in eu)
    # A finished job's rows are not kept (they are in the spool, sealed).
    assert not any(p.endswith("rows.sealed") for p in eu | sg)
    # Nothing of either tenant in the default data directory.
    assert not (tmp_path / "data" / "tenants").exists()
    # Addresses are sealed at rest in the log, not written in the clear.
    for region, tenant in (("eu", "acme"), ("sg", "globex")):
        log = (tmp_path / region / "tenants" / tenant / "log.db").read_bytes()
        assert f"{tenant}@example.net".encode() not in log
