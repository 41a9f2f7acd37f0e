"""Nothing personal in the clear at rest: after a server has accepted, deferred,
delivered and bounced mail, taken an unsubscribe and kept events for a webhook
that is down, no file under its data directory holds a recipient's address,
name, or a line of a message body."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from mailsflux.jobs.jobfile import TrackingSpec
from mailsflux.tenants import WebhookSpec
from mailsflux.tracking import load_config
from tests._gateway import delivery, two_tenants
from tests._http import Server
from tests._mail import RecordingHandler, SMTPServer, parse
from tests._serve import Running, new_key, server_config

PEOPLE = {
    "annabelle.quixote@example.net": "Annabelle Quixote",
    "slow.zebediah@example.org": "Zebediah Slowcombe",
    "gone.philomena@example.com": "Philomena Gonzaga",
}
BODY = "Secret line 7731 for {{who}}: your parcel code is Q-55-ZZ."


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_address_name_or_body_line_in_the_clear(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def reply(address: str, n: int) -> str | None:
        if address.startswith("gone."):
            return "550 5.1.1 <gone.philomena@example.com>: no such user"
        if address.startswith("slow.") and n == 1:
            return "451 4.2.1 try again later"
        return None

    acme, globex = two_tenants(tmp_path)
    acme = msgspec.structs.replace(
        acme,
        tracking=TrackingSpec(config=str(data / "acme-tracking.toml"), generate=True,
                              base_url="https://t.acme.example"),
        webhooks=[WebhookSpec(url=f"http://127.0.0.1:{closed_port()}/hook",
                              secret="s" * 24, allow_http=True, retry_initial=0.05)],
    )  # fmt: skip
    handler = RecordingHandler(reply)
    with SMTPServer(handler) as smtp:
        config = server_config(data, [acme, globex], delivery(smtp.url))
        key = new_key(config, "acme")
        with Running(config) as srv:
            for address, name in PEOPLE.items():
                msg = {"sender": "Acme <news@acme.example>", "to": f"{name} <{address}>",
                       "subject": "Hello {{who}}", "text": BODY,
                       "html": f"<p>{BODY}</p>", "data": {"who": name}}  # fmt: skip
                s, _, b = srv.call("POST", "/v1/messages", msg, key=key)
                assert s == 202, b
            deadline = time.monotonic() + 30
            while len(handler.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # annabelle now, zebediah after his deferral
            annabelle = next(
                m for m in handler.received if m.rcpt_tos == ["annabelle.quixote@example.net"]
            )
            header = parse(annabelle.data)["List-Unsubscribe"]
            one_click = re.search(r"<(https://[^>]+)>", header).group(1)  # type: ignore[union-attr]
            with Server(load_config(data / "acme-tracking.toml").app()) as web:
                status, _, _ = web.request(
                    "POST", urlsplit(one_click).path, body=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )  # fmt: skip
                assert status == 200
            s, _, page = srv.call("GET", "/v1/events", key=key)
            types = sorted(e["type"] for e in page["events"])
            assert types.count("bounced") == 1 and types.count("delivered") == 2, types
            assert handler.attempts["slow.zebediah@example.org"] == 2  # deferred once

    needles = [a.encode() for a in PEOPLE] + [a.split("@")[0].encode() for a in PEOPLE]
    needles += [n.encode() for n in PEOPLE.values()] + [b"Secret line 7731", b"Q-55-ZZ"]
    needles += [n.split()[1].encode() for n in PEOPLE.values()]  # surnames alone
    hits = []
    for f in sorted(data.rglob("*")):
        if f.is_file():
            blob = f.read_bytes()
            hits += [f"{f.relative_to(data)}: {n.decode()}" for n in needles if n in blob]
    assert hits == []
