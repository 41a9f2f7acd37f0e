"""POST /v1/letters on a real server: PDFs into the tenant's drop folder,
letter_submitted events in GET /v1/events, a bad address one problem, the
same name again hands nothing over twice; the print house's reports become
events, in the log and through the tenant's webhook; the address is deleted
30 days after delivery; no address in the clear under the data directory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec

from mailsflux.gateway import RetentionSpec
from mailsflux.letters.jobfile import CarrierSpec
from tests._gateway import delivery, two_tenants
from tests._mail import RecordingHandler, SMTPServer
from tests._serve import Running, new_key, server_config, wait_for
from tests._webhooks import Receiver, all_events, free_port, hook

DAY = 86_400.0
LETTERS = {
    "name": "renewals-2026-12",
    "template": "<html><body><p>Dear {{first}}, your plan renews.</p></body></html>",
    "sender": "Acme GmbH, Hauptstr. 1, 10115 Berlin",
    "origin_country": "DE",
    "recipients": [
        {"ref": "C-1", "data": {"first": "Erika"}, "address": {"name": "Erika Mustermann",
         "street_address": "Hauptstraße 5", "city": "Berlin", "postal_code": "10115",
         "country_code": "DE"}},
        {"ref": "C-2", "data": {"first": "Max"}, "address": {"name": "Max Muster",
         "street_address": "Hauptstraße 6", "city": "Berlin", "postal_code": "1011",
         "country_code": "DE"}},
    ],
}  # fmt: skip


def test_post_letters(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    port = free_port()
    tenant, globex = two_tenants(tmp_path)
    tenant = msgspec.structs.replace(tenant, webhooks=[hook(f"http://127.0.0.1:{port}/hooks")])
    with SMTPServer(RecordingHandler()) as smtp, Receiver(port) as rx:
        config = server_config(tmp_path / "data", [tenant, globex], delivery(smtp.url))
        config = msgspec.structs.replace(config, letters=CarrierSpec(kind="file", dir=str(drop)))
        acme = new_key(config, "acme")
        with Running(config) as srv:
            s, _, b = srv.call("POST", "/v1/letters", LETTERS, key=acme)
            assert s == 200, b
            assert (b["submitted"], b["skipped"], b["failed"]) == (1, 1, 0)
            assert b["problems"] == [
                {"where": "recipients[1]", "what": "field address.postal_code: invalid for DE;"
                 " skipped"}
            ]  # fmt: skip
            pdfs = list((drop / "acme").glob("*.pdf"))
            assert len(pdfs) == 1 and pdfs[0].read_bytes().startswith(b"%PDF-")

            def submitted() -> list[dict[str, object]]:
                events = srv.call("GET", "/v1/events", key=acme)[2]["events"]
                return [e for e in events if e["type"] == "letter_submitted"]

            (event,) = wait_for(submitted)
            assert event["recipient"] == "C-1" and event["job"] == "renewals-2026-12"
            assert event["message_id"] == pdfs[0].stem
            assert event["details"] == {"carrier": "file"}

            # The same request again (a retry): nothing handed over twice.
            s, _, b = srv.call("POST", "/v1/letters", LETTERS, key=acme)
            assert s == 200 and (b["submitted"], b["resumed"]) == (0, 1)
            assert len(list((drop / "acme").glob("*.pdf"))) == 1

            s, _, b = srv.call("POST", "/v1/letters", {**LETTERS, "paper": "A5"}, key=acme)
            assert s == 422 and b["error"]["field"] == "$.paper"

            # The print house reports; the server's sweep (and its tracking
            # loop) turns that into events; 30 days after delivery the
            # address goes (the clock moved to 29 and 31 days).
            lid, delivered = pdfs[0].stem, time.time()
            (drop / "acme" / "status.csv").write_text(
                f"letter_id,status,time\n{lid},printed,{delivered - 50}\n"
                f"{lid},delivered,{delivered}\n"
            )
            gateway = srv.server.gateway
            assert gateway is not None

            def sweep(days: float) -> dict[str, int]:
                work = gateway.sweep(RetentionSpec(), now=delivered + days * DAY)
                return asyncio.run_coroutine_threadsafe(work, srv.loop).result(60)

            first = sweep(29)
            assert (first["letter_events"], first["letter_addresses_deleted"]) == (2, 0)
            assert sweep(31)["letter_addresses_deleted"] == 1

            def tracked() -> list[str]:
                events = srv.call("GET", "/v1/events", key=acme)[2]["events"]
                got = [e["type"] for e in events if e["message_id"] == lid]
                return got if len(got) == 3 else []

            assert wait_for(tracked) == ["letter_submitted", "printed", "delivered"]
            # The same events through the tenant's webhook, as email's go.
            ids = {int(e["id"].removeprefix("evt_")) for e in all_events(srv, acme)}
            rx.wait_for_ids(ids)
            hooked = [e for p in rx.acked() for e in p.events if e["message_id"] == lid]
            assert [e["type"] for e in hooked] == ["letter_submitted", "printed", "delivered"]
            assert hooked[2]["recipient"] == "C-1"
    for f in (tmp_path / "data").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert b"Mustermann" not in data and b"Hauptstra" not in data, f
