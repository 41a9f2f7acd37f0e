"""Each tenant's endpoint gets that tenant's events only, signed with its
own secret, filtered by its own event types."""

from __future__ import annotations

from pathlib import Path

import msgspec

from mailsflux.webhooks import verify
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config
from tests._webhooks import Receiver, delivered, hook, post_messages

ACME_SECRET = "acme-secret-0123456789"
GLOBEX_SECRET = "globex-secret-0123456789"


def test_no_endpoint_sees_another_tenants_events(tmp_path: Path) -> None:
    with Receiver() as rx, SMTPServer(RecordingHandler()) as smtp:
        acme, globex = two_tenants(tmp_path)
        base = f"http://127.0.0.1:{rx.port}"
        acme = msgspec.structs.replace(acme, webhooks=[hook(f"{base}/acme", ACME_SECRET)])
        globex = msgspec.structs.replace(
            globex,
            webhooks=[hook(f"{base}/globex", GLOBEX_SECRET, events=["delivered"], batch_size=2)],
        )
        config = server_config(tmp_path / "data", [acme, globex], delivery(smtp.url))
        keys = {"acme": new_key(config, "acme"), "globex": new_key(config, "globex")}
        with Running(config) as srv:
            for tenant, key in keys.items():
                post_messages(srv, key, f"news@{tenant}.example", 6, f"{tenant}-")
            logs = {tenant: delivered(srv, key, 6) for tenant, key in keys.items()}
            rx.wait_for_ids({int(e["id"][4:]) for e in logs["acme"]}, "/acme")
            sent = {int(e["id"][4:]) for e in logs["globex"] if e["type"] == "delivered"}
            rx.wait_for_ids(sent, "/globex")

    for tenant, secret, other in (
        ("acme", ACME_SECRET, GLOBEX_SECRET),
        ("globex", GLOBEX_SECRET, ACME_SECRET),
    ):
        posts = rx.acked(f"/{tenant}")
        mine = {e["id"]: e for e in logs[tenant]}
        for p in posts:
            sig = p.headers["mailsflux-signature"]
            assert verify(secret, sig, p.body) and not verify(other, sig, p.body)
            assert p.headers["mailsflux-tenant"] == tenant
            for e in p.events:
                assert e["tenant"] == tenant
                assert e == mine[e["id"]], "an event the tenant's own log does not hold"
                assert e["recipient"].startswith(f"{tenant}-")
    # Both logs count from evt_1: the ids overlap, the events do not.
    assert {e["id"] for e in logs["acme"]} & {e["id"] for e in logs["globex"]}
    assert {e["type"] for p in rx.acked("/globex") for e in p.events} == {"delivered"}
    assert {e["type"] for p in rx.acked("/acme") for e in p.events} == {"queued", "delivered"}
    assert max(len(p.ids) for p in rx.acked("/globex")) <= 2
