"""The bounce-domain listener over loopback with a real SMTP client: VERP and
feedback addresses are accepted, anything else is refused at RCPT (no relay),
and what arrives becomes events and suppressions."""

from __future__ import annotations

import asyncio
import json
import smtplib
from pathlib import Path

from mailsflux.feedback import BounceListener, Ingestor, Verp
from mailsflux.tracking.events import EventStore
from tests._bounces import DIR, DOMAIN, KEYS


def test_listener_accepts_only_its_addresses_and_ingests(tmp_path: Path) -> None:
    verp = Verp(KEYS, "t1", DOMAIN)
    token = verp.make("<m30@sender.example>", "zed@example.com", "spring", "acme")
    dsn = (
        (DIR / "postfix-user-unknown.eml")
        .read_bytes()
        .replace(b"alice@example.com", b"zed.forwarded@example.com")
        .replace(b"\n", b"\r\n")  # smtplib sends bytes as they are
    )
    arf = (DIR / "arf-abuse.eml").read_bytes().replace(b"\n", b"\r\n")
    store = EventStore(tmp_path / "t.sqlite", b"s" * 32)
    ingestor = Ingestor(
        quarantine=tmp_path / "q", events=tmp_path / "ev.jsonl", store=store, verp=verp
    )
    replies: dict[str, tuple[int, bytes]] = {}

    def client(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("mx.example.com")
            assert s.mail("<>")[0] == 250
            for name, rcpt in (
                ("stranger", "someone@gmail.example"),
                ("relay", f"bounces+abc@{DOMAIN}"),
                ("forged", token.replace("bounces+", "bounces+a")),
                ("other-domain", token.replace(DOMAIN, "elsewhere.example")),
                ("verp", token.upper()),
            ):
                replies[name] = s.rcpt(rcpt)
            assert s.data(dsn)[0] == 250
            s.rset()
            s.mail("<>")
            replies["fbl"] = s.rcpt("FBL@Sender.Example")
            assert s.data(arf)[0] == 250
            s.rset()
            s.mail("<>")
            assert s.rcpt("postmaster@sender.example")[0] == 550
            # No recipient accepted: nothing to send data to.
            code, _ = s.docmd("DATA")
            assert code == 503

    async def go() -> None:
        listener = BounceListener(ingestor, verp, ["fbl@sender.example"])
        _, port = await listener.start("127.0.0.1", 0)
        try:
            await asyncio.to_thread(client, port)
        finally:
            await listener.close()
        assert (listener.received, listener.refused) == (2, 5)

    try:
        asyncio.run(go())
    finally:
        ingestor.close()
    for name in ("stranger", "relay", "forged", "other-domain"):
        code, text = replies[name]
        assert code == 550 and text.startswith(b"5.1.1"), (name, code, text)
    assert replies["verp"][0] == 250 and replies["fbl"][0] == 250
    try:
        assert store.is_suppressed("zed@example.com")  # the token's address
        assert not store.is_suppressed("zed.forwarded@example.com")
        assert store.suppression("trent@mailbox.example").reason == "complaint"  # type: ignore[union-attr]
    finally:
        store.close()
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [(e["type"], e["recipient"], e["job"], e["tenant"]) for e in events] == [
        ("bounced", "zed@example.com", "spring", "acme"),
        ("complained", "trent@mailbox.example", None, ""),
    ]
    assert events[0]["details"]["source"] == "smtp:127.0.0.1"
    assert all(e["id"].startswith("evt_") for e in events)
