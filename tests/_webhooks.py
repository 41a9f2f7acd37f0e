"""A real webhook receiver (an ASGI app under uvicorn, in a thread) that
records every POST and answers what the test says."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux.tenants import WebhookSpec
from tests._http import Server
from tests._serve import wait_for

SECRET = "whsec-0123456789abcdef"


def free_port() -> int:
    """A port nothing listens on (yet): the endpoint that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hook(url: str, secret: str = SECRET, **options: Any) -> WebhookSpec:
    """A webhook that retries quickly (tests wait for it)."""
    options.setdefault("retry_initial", 0.05)
    options.setdefault("retry_max", 0.4)
    options.setdefault("timeout", 5.0)
    return WebhookSpec(url=url, secret=secret, **options)


class Post:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self.status = 0

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(json.loads(self.body)["events"])

    @property
    def ids(self) -> list[int]:
        return [int(e["id"].removeprefix("evt_")) for e in self.events]


class Receiver(Server):
    """Records POSTs; ``answer(n, post)`` gives the status of the n-th (from 0)."""

    def __init__(
        self,
        port: int = 0,
        answer: Callable[[int, Post], int] | None = None,
        *,
        hold: Callable[[int, Post], threading.Event | None] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self.answer = answer or (lambda n, p: 200)
        self.hold = hold or (lambda n, p: None)
        kw: dict[str, Any] = {}
        if tls is not None:
            kw = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}
        super().__init__(self.app, port, interface="asgi3", lifespan="off", **kw)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        post = Post(scope["path"], headers, body)
        with self.lock:
            n = len(self.posts)
            self.posts.append(post)
        held = self.hold(n, post)
        if held is not None:
            await asyncio.to_thread(held.wait, 30)
        status = self.answer(n, post)
        post.status = status
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def acked(self, path: str | None = None) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if 200 <= p.status < 300 and path in (None, p.path)]

    def acked_ids(self, path: str | None = None) -> list[int]:
        return [i for p in self.acked(path) for i in p.ids]

    def wait_for_ids(self, ids: set[int], path: str | None = None, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not ids <= set(self.acked_ids(path)):
            assert time.monotonic() < deadline, f"missing {sorted(ids - set(self.acked_ids()))}"
            time.sleep(0.05)


def post_messages(srv: Any, key: str, sender: str, n: int, tag: str = "r") -> list[str]:
    """``n`` messages from ``sender`` to ``<tag><i>@example.net``; their ids."""
    ids = []
    for i in range(n):
        message = {"sender": sender, "to": f"{tag}{i}@example.net", "subject": "s", "text": "t"}
        status, _, body = srv.call("POST", "/v1/messages", message, key=key)
        assert status == 202, body
        ids.append(body["id"])
    return ids


def delivered(srv: Any, key: str, n: int) -> list[dict[str, Any]]:
    """The tenant's events, once ``n`` of them are ``delivered``."""

    def check() -> list[dict[str, Any]] | None:
        events = all_events(srv, key)
        return events if sum(e["type"] == "delivered" for e in events) == n else None

    found: list[dict[str, Any]] = wait_for(check)
    return found


def all_events(srv: Any, key: str) -> list[dict[str, Any]]:
    """Every event of the key's tenant, through GET /v1/events."""
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, page = srv.call("GET", f"/v1/events?cursor={cursor}&limit=1000", key=key)
        assert status == 200, page
        out += page["events"]
        if not page["events"]:
            return out
        cursor = page["next"]


def readme_verify() -> Callable[..., bool]:
    """The verification helper as the README shows it, for receivers to copy."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    section = text[text.index("## Webhooks") :]
    start = section.index("```python\n") + len("```python\n")
    code = section[start : section.index("```", start)]
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    verify: Callable[..., bool] = scope["verify"]
    return verify
