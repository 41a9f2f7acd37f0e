"""A tracked job: links rewritten, then clicked, opened and unsubscribed over HTTP.

The job is sent to a real SMTP server; the tracking server runs under
uvicorn on port 0 with the config the job generated; a second send honours
the unsubscribe and the hard bounce.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

from mailsflux.delivery.relay import Relay
from mailsflux.dkim.keyfiles import txt_path_for
from mailsflux.jobs import Prepared, send
from mailsflux.tracking import load_config
from mailsflux.tracking.server import GIF
from mailsflux.types import Problem
from tests._http import Server
from tests._jobs import make_job, people
from tests._mail import RecordingHandler, SMTPServer, dkim_verify, parse, txt_record

HTML = """<html><body>
<p>Hi {{first_name}}</p>
<p><a href="https://shop.example/item?id=7&amp;u={{email}}">Your item</a>
<a href="mailto:help@sender.example">Mail us</a>
<a data-mf-notrack href="https://shop.example/private">Private</a></p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>
</body></html>
"""
TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
"""


def bounce_gone(address: str, attempt: int) -> str | None:
    return "550 5.1.1 no such mailbox" if address.startswith("gone@") else None


def run_send(job: Path, port: int, problems: list[Problem]) -> tuple[int, int, int]:
    prepared = Prepared.load(job)
    try:
        s = asyncio.run(
            send(prepared, Relay("127.0.0.1", port, "none"), on_problem=problems.append)
        )
    finally:
        prepared.close()
    return s.sent, s.failed, s.skipped


def test_track_click_open_unsubscribe_then_suppress(tmp_path: Path) -> None:
    rows = [*people(3), ["gone@example.com", "Gone", "Gone", "Team"]]
    job = make_job(tmp_path, rows, html=HTML)
    job.write_text(job.read_text() + TRACKING)
    handler = RecordingHandler(bounce_gone)
    with SMTPServer(handler) as smtp:
        first: list[Problem] = []
        assert run_send(job, smtp.port, first) == (3, 1, 0)

        msg = next(r for r in handler.received if r.rcpt_tos == ["user0@example.com"])
        record = txt_record(txt_path_for(job.parent / "dkim" / "t1.pem"))
        assert dkim_verify(msg.data, record, selector="t1", domain="sender.example")
        parsed = parse(msg.data)
        sig = parsed["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
        assert "list-unsubscribe" in sig.lower() and "list-unsubscribe-post" in sig.lower()
        html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "shop.example/item" not in html  # tracked
        assert 'href="mailto:help@sender.example"' in html  # not tracked
        assert 'href="https://shop.example/private"' in html and "data-mf-notrack" not in html
        clicks = re.findall(r'href="(https://t\.sender\.example/c/[^"]+)"', html)
        opens = re.findall(r'src="(https://t\.sender\.example/o/[^"]+)"', html)
        unsub_link = re.findall(r'href="(https://t\.sender\.example/u/[^"]+)"', html)
        assert len(clicks) == 1 and len(opens) == 1 and len(unsub_link) == 1
        header = parsed["List-Unsubscribe"]
        one_click = re.search(r"<(https://[^>]+)>", header).group(1)  # type: ignore[union-attr]
        assert one_click == unsub_link[0]
        assert "<mailto:" not in header  # no unsubscribe_mailto in this job
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        cfg = load_config(job.parent / "tracking.toml")
        with Server(cfg.app()) as web:
            status, headers, _ = web.request("GET", urlsplit(clicks[0]).path)
            assert status == 302
            assert headers["location"] == "https://shop.example/item?id=7&u=user0@example.com"
            status, headers, body = web.request("GET", urlsplit(opens[0]).path)
            assert (status, body) == (200, GIF)
            status, _, _ = web.request(
                "POST",
                urlsplit(one_click).path,
                body=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert status == 200

        store = cfg.open_store()
        try:
            kinds = sorted(e.kind for e in store.events(recipient="user0@example.com"))
            assert kinds == ["click", "open", "unsubscribe"]
            assert store.is_suppressed("user0@example.com")
            assert store.is_suppressed("gone@example.com")  # hard bounce, 5.1.1
            assert not store.is_suppressed("user1@example.com")
        finally:
            store.close()

        handler.received.clear()
        second: list[Problem] = []
        assert run_send(job, smtp.port, second) == (2, 0, 2)
        assert sorted(r.rcpt_tos[0] for r in handler.received) == [
            "user1@example.org",
            "user2@example.com",
        ]
        skipped = sorted(p.message for p in second)
        assert skipped == [
            "gone@example.com: suppressed; row skipped",
            "user0@example.com: suppressed; row skipped",
        ]
