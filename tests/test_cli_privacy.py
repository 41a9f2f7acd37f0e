"""``mailsflux privacy``: export, correct, erase and object, across every store, audited."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from mailsflux import Message
from mailsflux.gateway import Gateway
from mailsflux.server import ServerConfig
from mailsflux.tenants import Principal
from mailsflux.tracking.config import load_config
from tests._cli import run_cli
from tests._gateway import delivery, two_tenants
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer

ACME = Principal(tenant="acme", key_id="k", roles=frozenset({"send", "read"}))


def test_a_persons_rights_across_the_stores(tmp_path: Path) -> None:
    tenants = list(two_tenants(tmp_path))
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        'data_dir = "data"\n'
        + "".join(
            f'[[tenants]]\nname = "{t.name}"\ndomains = {json.dumps(t.domains)}\n' for t in tenants
        )
    )
    data = ServerConfig.load(cfg).data_path
    track = tmp_path / "tracking.toml"
    assert run_cli("track-server", "--new-config", str(track), "--base-url",
                   "https://t.example").returncode == 0  # fmt: skip

    async def accept(url: str) -> None:
        gw = Gateway(two_tenants(tmp_path), data_dir=data, delivery=delivery(url))
        async with gw:
            for to in ("Ann <Ann@Example.NET>", "bo@example.net"):
                await gw.accept(ACME, Message(sender="a@acme.example", to=to, subject="s",
                                              text="t"))  # fmt: skip
            for _ in range(100):
                if sum(e.type == "delivered" for e in gw.events(ACME, 0, 100)) == 2:
                    break
                await asyncio.sleep(0.05)

    with SMTPServer(RecordingHandler()) as smtp:
        asyncio.run(accept(smtp.url))
        rows = [["ann@example.net", "Ann", "Ann", "Pro"], ["cy@example.org", "Cy", "Cy", "Team"]]
        job = make_job(tmp_path, rows, relay=smtp.url)
        assert run_cli("send", str(job), "-q").returncode == 0

    base = ["--config", str(cfg), "--tracking", str(track)]
    out = run_cli("privacy", "export", "ann@example.net", *base)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["address"] == "ann@example.net"
    assert [r["recipient"] for r in doc["spool"]] == ["ann@example.net"]
    events = doc["tenants"]["acme"]["events"]
    assert sorted(e["type"] for e in events) == ["delivered", "queued"]
    assert {e["recipient"].lower() for e in events} == {"ann@example.net"}
    assert "bo@example.net" not in out.stdout and "cy@example.org" not in out.stdout
    assert doc["tracking"]["address"] == "ann@example.net"

    fixed = run_cli("privacy", "correct", "ann@example.net", "--to", "ann@example.com", *base)
    assert fixed.returncode == 0, fixed.stderr
    moved = json.loads(run_cli("privacy", "export", "ann@example.com", *base).stdout)
    assert len(moved["tenants"]["acme"]["events"]) == 2 and len(moved["spool"]) == 1

    gone = run_cli("privacy", "erase", "ann@example.com", *base)
    assert gone.returncode == 0 and "acme.events: 2" in gone.stdout
    after = json.loads(run_cli("privacy", "export", "ann@example.com", *base).stdout)
    assert after["spool"] == [] and after["tenants"]["acme"]["events"] == []
    # Bo's data is untouched.
    bo = json.loads(run_cli("privacy", "export", "bo@example.net", *base).stdout)
    assert len(bo["tenants"]["acme"]["events"]) == 2

    assert run_cli("privacy", "object", "bo@example.net", *base).returncode == 0
    with load_config(track).open_store() as store:
        assert store.objects_to_tracking("bo@example.net")

    audit = (data / "privacy-audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in audit] == [
        "export", "correct", "export", "erase", "export", "export", "object"]  # fmt: skip
    assert "ann" not in "".join(audit) and "bo@" not in "".join(audit)
    assert os.stat(data / "privacy-audit.jsonl").st_mode & 0o777 == 0o600

    bad = run_cli("privacy", "erase", "not an address", *base)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
