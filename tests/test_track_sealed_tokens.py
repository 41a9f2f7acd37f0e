"""Tracking tokens reveal nothing without the key (issue 15, "At rest").

A tracked job is sent to a real SMTP server; every click, open and
unsubscribe URL (and the VERP return path) of the message it received is
taken apart the way anyone holding the email could: the token after the key
id is base64url-decoded, and neither the recipient's address (nor its local
part or domain) nor the link's target may appear in what comes out.  The
same URLs still work on the tracking server, which holds the key.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import msgspec

from mailsflux.delivery.relay import Relay
from mailsflux.jobs import Prepared, send
from mailsflux.tracking import load_config, write_new_config
from mailsflux.types import Problem
from tests._http import Server
from tests._jobs import make_job
from tests._mail import RecordingHandler, SMTPServer, parse

RCPT = "zoe.haddad@example.org"
TARGET = "https://shop.example/item?id=7"
HTML = f"""<html><body>
<p>Hi {{{{first_name}}}}</p>
<p><a href="{TARGET}">Your item</a></p>
<p><a href="{{{{unsubscribe_url}}}}">Unsubscribe</a></p>
</body></html>
"""
TRACKING = """
[tracking]
config = "tracking.toml"
generate = true
base_url = "https://t.sender.example"
bounce_domain = "bounce.sender.example"
"""


def _opened(token: str) -> bytes:
    """What the token's body says to someone without the key."""
    _, dot, body = token.partition(".")
    assert dot and body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _b32_opened(local: str) -> bytes:
    token = local.partition("+")[2].upper()
    return base64.b32decode(token + "=" * (-len(token) % 8))


def test_urls_of_a_sent_message_do_not_reveal_the_address(tmp_path: Path) -> None:
    job = make_job(tmp_path, [[RCPT, "Zoe Haddad", "Zoe", "Pro"]], html=HTML, text=None)
    job.write_text(job.read_text() + TRACKING)
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp:
        prepared = Prepared.load(job)
        problems: list[Problem] = []
        try:
            relay = Relay("127.0.0.1", smtp.port, "none")
            stats = asyncio.run(send(prepared, relay, on_problem=problems.append))
        finally:
            prepared.close()
    assert (stats.sent, problems) == (1, [])
    (msg,) = handler.received
    parsed = parse(msg.data)
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    urls = {
        "click": re.findall(r'href="(https://t\.sender\.example/c/[^"]+)"', html),
        "open": re.findall(r'src="(https://t\.sender\.example/o/[^"]+)"', html),
        "unsubscribe": re.findall(r'href="(https://t\.sender\.example/u/[^"]+)"', html),
        "List-Unsubscribe": re.findall(r"<(https://[^>]+)>", parsed["List-Unsubscribe"]),
    }
    assert all(len(found) == 1 for found in urls.values()), urls

    secrets = [RCPT, "zoe.haddad", "example.org", TARGET, "shop.example"]
    for what, (url, *_) in urls.items():
        token = unquote(urlsplit(url).path.rpartition("/")[2])
        opened = _opened(token)
        for s in secrets:
            assert s.encode() not in opened, f"{what} token reveals {s!r}"
            assert s.encode() not in url.encode()
    # VERP return paths were sealed already; they stay so.
    verp = _b32_opened(msg.mail_from.partition("@")[0])
    for s in secrets:
        assert s.encode() not in verp and s not in msg.mail_from

    # The key holder still reads them: the click goes where it should.
    cfg = load_config(job.parent / "tracking.toml")
    with Server(cfg.app()) as web:
        status, headers, _ = web.request("GET", urlsplit(urls["click"][0]).path)
        assert (status, headers["location"]) == (302, TARGET)
        status, _, _ = web.request("GET", urlsplit(urls["open"][0]).path)
        assert status == 200
    store = cfg.open_store()
    try:
        kinds = sorted(e.kind for e in store.events(recipient=RCPT))
    finally:
        store.close()
    assert kinds == ["click", "open"]


def _signed_click(key: bytes, sent_at: int) -> str:
    """A click token as made before tokens were sealed: payload || HMAC tag."""
    payload = msgspec.msgpack.encode(("m@x", RCPT, "j", sent_at, 1, TARGET))
    tag = hmac.digest(key, b"k1." + payload, "sha256")[:16]
    return "k1." + base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


def test_signed_tokens_days_comes_from_the_tracking_config(tmp_path: Path) -> None:
    path = tmp_path / "tracking.toml"
    write_new_config(path, "https://t.sender.example")
    cfg = load_config(path)
    old = _signed_click(cfg.keys["k1"], int(time.time()) - 86400)
    assert cfg.verifier().decode(old) is None  # a new config never sent signed tokens
    text = path.read_text().replace("signed_tokens_days = 0", "signed_tokens_days = 2")
    path.write_text(text)
    p = load_config(path).verifier().decode(old, "click")
    assert p is not None and (p.recipient, p.url) == (RCPT, TARGET)
    path.write_text(text.replace("signed_tokens_days = 2", "signed_tokens_days = 0.5"))
    assert load_config(path).verifier().decode(old) is None
