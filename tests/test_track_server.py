"""The tracking server, run under a real uvicorn on port 0 and spoken to over HTTP."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailsflux.tracking import EventStore, Tracker, TrackingApp, load_config, write_new_config
from mailsflux.tracking.server import GIF, location
from tests._http import HUMAN, Server

BASE_KEYS = {"k1": b"1" * 32, "k2": b"2" * 32}
SECRET = b"s" * 32
MID, RCPT = "abc.12@sender.example", "Zoe.Haddad@example.org"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Server, Tracker, EventStore]]:
    sent = time.time() - 3600  # an hour ago: events are not "fast"
    tracker = Tracker("https://t.example.com", BASE_KEYS, "k2", clock=lambda: sent)
    store = EventStore(tmp_path / "track.sqlite", SECRET)
    app = TrackingApp(tracker.verifier, store, window=10)
    with Server(app) as server:
        yield server, tracker, store
    # lifespan shutdown closed the store


def path_of(url: str) -> str:
    assert url.startswith("https://t.example.com/")
    return url[len("https://t.example.com") :]


def test_click_redirects_exactly_and_is_recorded(setup: Any) -> None:
    server, tracker, store = setup
    urls = [
        "https://shop.example/p/42?u=zoe.haddad%40example.org&ref=mail&utm_source=x",
        "http://Example.com/Path/With%20Space/?q=a+b&z=%E2%82%AC#frag",
        "https://example.com/?a=1&b=2&u=Zoë",
    ]
    for url in urls:
        link = tracker.click_url(url, message_id=MID, recipient=RCPT, job="welcome")
        status, headers, body = server.request("GET", path_of(link))
        assert status == 302
        assert headers["location"] == location(url).decode()
        assert body == b""
        assert headers["referrer-policy"] == "no-referrer"
        assert "no-store" in headers["cache-control"]
    assert location(urls[0]).decode() == urls[0]
    assert location(urls[1]).decode() == urls[1]
    assert location(urls[2]).decode() == "https://example.com/?a=1&b=2&u=Zo%C3%AB"
    # links rewritten inside HTML work the same way
    html = tracker.rewrite_html(
        b'<a href="https://e.com/?x=1&amp;u=zoe">go</a>', message_id=MID, recipient=RCPT
    )
    href = html.split(b'"')[1].decode()
    status, headers, _ = server.request("GET", path_of(href))
    assert (status, headers["location"]) == (302, "https://e.com/?x=1&u=zoe")

    store.flush()
    got = store.events(recipient=RCPT, kind="click")
    assert [e.url for e in got] == [*urls, "https://e.com/?x=1&u=zoe"]
    assert all(not e.machine and e.user_agent == HUMAN and e.message_id == MID for e in got)


def test_open_pixel(setup: Any) -> None:
    server, tracker, store = setup
    tok = tracker.token("open", message_id=MID, recipient=RCPT, job="welcome")
    status, headers, body = server.request("GET", f"/o/{tok}")
    assert (status, headers["content-type"], body) == (200, "image/gif", GIF)
    proxy = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    server.request("GET", f"/o/{tok}", headers={"User-Agent": proxy})
    store.flush()
    opens = store.events(kind="open")
    assert [(e.recipient, e.machine, e.reason) for e in opens] == [
        (RCPT, False, ""),
        (RCPT, True, "proxy:google"),
    ]


def test_head_and_fast_requests_are_flagged_not_dropped(tmp_path: Path) -> None:
    tracker = Tracker("https://t.example.com", BASE_KEYS, "k2")  # sent now
    store = EventStore(tmp_path / "t.sqlite", SECRET)
    with Server(TrackingApp(tracker.verifier, store, window=30)) as server:
        link = tracker.click_url("https://e.com/x", message_id=MID, recipient=RCPT)
        status, headers, body = server.request("HEAD", path_of(link))
        assert (status, headers["location"], body) == (302, "https://e.com/x", b"")
        status, _, _ = server.request("GET", path_of(link))
        assert status == 302
        tok = tracker.token("open", message_id=MID, recipient=RCPT)
        status, headers, body = server.request("HEAD", f"/o/{tok}")
        assert (status, body) == (200, b"")
        store.flush()
        got = [(e.kind, e.machine, e.reason) for e in store.events()]
        assert got == [("click", True, "head"), ("click", True, "fast"), ("open", True, "head")]


def test_bad_tokens_get_404_and_never_redirect(setup: Any) -> None:
    server, tracker, store = setup
    link = tracker.click_url("https://good.example/", message_id=MID, recipient=RCPT)
    tok = path_of(link)[3:]
    kid, body = tok.split(".")
    evil = Tracker("https://t.example.com", {"k2": b"e" * 32}, "k2")
    forged = evil.click_url("https://evil.example/", message_id=MID, recipient=RCPT)
    open_tok = tracker.token("open", message_id=MID, recipient=RCPT)
    # Genuinely signed, but not http(s): the server must not redirect there either.
    js = tracker.token("click", message_id=MID, recipient=RCPT, url="javascript:alert(1)")
    bad_paths = [
        f"/c/{js}",
        path_of(forged),  # right key id, wrong key
        f"/c/{tok[:-3]}",  # truncated
        f"/c/{tok[:20]}",
        f"/c/k9.{body}",  # unknown key id
        f"/c/{kid}.{body[:10]}{'A' if body[10] != 'A' else 'B'}{body[11:]}",  # garbled
        f"/c/{tok}x",
        f"/c/{tok}/",
        "/c/",
        "/c/https://evil.example/",
        "/c/%2F%2Fevil.example",
        f"/c/{open_tok}",  # an open token is not a click token
        f"/u/{tok}",  # nor is a click an unsubscribe
        f"/o/{tok}",
        f"/x/{tok}",
        "/",
        "/favicon.ico",
    ]
    for p in bad_paths:
        status, headers, _ = server.request("GET", p)
        assert status == 404, p
        assert "location" not in headers
    status, headers, _ = server.request("POST", f"/c/{tok}")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    store.flush()
    assert store.count() == 0


def test_one_click_unsubscribe(setup: Any) -> None:
    server, tracker, store = setup
    (_, value), (_, post) = tracker.unsubscribe_headers(MID, RCPT, "welcome")
    url = value.strip("<>")
    assert post == "List-Unsubscribe=One-Click"
    assert not store.is_suppressed(RCPT)
    status, _, body = server.request(
        "POST",
        path_of(url),
        body=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and b"unsubscribed" in body
    # committed before the answer: the sender sees it at once
    assert store.is_suppressed(RCPT) and store.is_suppressed(RCPT.lower())
    assert not store.is_suppressed("someone.else@example.org")
    # again, and as multipart: idempotent
    boundary = "XyZ"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    status, _, _ = server.request(
        "POST",
        path_of(url),
        body=multipart,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200
    store.flush()
    ev = store.events(kind="unsubscribe")
    assert len(ev) == 2 and ev[0].recipient == RCPT and ev[0].job == "welcome"
    s = store.suppression(RCPT)
    assert s is not None and (s.reason, s.job, s.message_id) == ("unsubscribe", "welcome", MID)


def test_unsubscribe_page_changes_nothing_on_get(setup: Any) -> None:
    server, tracker, store = setup
    url = tracker.unsubscribe_url(MID, RCPT, "welcome")
    for method in ("GET", "HEAD"):
        status, headers, body = server.request(method, path_of(url))
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "form-action 'self'" in headers["content-security-policy"]
    status, _, body = server.request("GET", path_of(url))
    assert b'<form method="post" action="">' in body
    assert b'name="List-Unsubscribe" value="One-Click"' in body
    assert RCPT.encode() not in body and RCPT.lower().encode() not in body
    # a POST without the one-click field does nothing
    status, _, _ = server.request("POST", path_of(url), body=b"x=1")
    assert status == 400
    store.flush()
    assert not store.is_suppressed(RCPT)
    assert store.count() == 0


def test_export_and_erase_after_real_traffic(setup: Any) -> None:
    server, tracker, store = setup
    for who in (RCPT, "other@example.org"):
        link = tracker.click_url("https://e.com/", message_id=MID, recipient=who)
        assert server.request("GET", path_of(link))[0] == 302
    server.request(
        "POST", path_of(tracker.unsubscribe_url(MID, RCPT)), body=b"List-Unsubscribe=One-Click"
    )
    doc = store.export(RCPT)
    assert [e["kind"] for e in doc["events"]] == ["click", "unsubscribe"]
    assert doc["suppression"]["address"] == RCPT.lower()
    assert store.erase(RCPT) == 2
    assert store.export(RCPT)["events"] == []
    assert store.is_suppressed(RCPT)
    assert store.count() == 1


def test_mounted_under_a_prefix(tmp_path: Path) -> None:
    tracker = Tracker("https://t.example.com/track", BASE_KEYS, "k1", clock=lambda: 0)
    store = EventStore(tmp_path / "t.sqlite", SECRET)
    app = TrackingApp(tracker.verifier, store)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/track/"):
            scope = {**scope, "root_path": "/track"}
        await app(scope, receive, send)

    with Server(outer) as server:
        link = tracker.click_url("https://e.com/m", message_id=MID, recipient=RCPT)
        assert link.startswith("https://t.example.com/track/c/")
        status, headers, _ = server.request("GET", link[len("https://t.example.com") :])
        assert (status, headers["location"]) == (302, "https://e.com/m")


def test_track_server_main_runs_uvicorn(tmp_path: Path) -> None:
    cfg = tmp_path / "tracking.toml"
    write_new_config(cfg, "https://t.example.com")
    assert cfg.stat().st_mode & 0o077 == 0
    config = load_config(cfg)
    tracker = config.tracker()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mailsflux.tracking import main; sys.exit(main())",
            "--config",
            str(cfg),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        link = tracker.click_url("https://e.com/main", message_id=MID, recipient=RCPT)
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", link[len("https://t.example.com") :])
                r = conn.getresponse()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (r.status, r.getheader("location")) == (302, "https://e.com/main")
        conn.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert MID.encode() not in out + err and b"/c/" not in out + err  # no access log
    with config.open_store() as store:
        assert [e.url for e in store.events(recipient=RCPT)] == ["https://e.com/main"]
