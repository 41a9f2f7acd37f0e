"""A plain ASGI app (no framework) sends through the Engine from its request
handlers, many at once, served by uvicorn over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mailsflux import Config, Engine, Message
from tests._engine import engine_config
from tests._http import Server
from tests._mail import RecordingHandler, SMTPServer, parse

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
N = 40


class App:
    """POST /send {"to": ..., "name": ...}: one welcome message; answers its result."""

    def __init__(self, config: Config) -> None:
        self.engine = Engine(config)  # entered in uvicorn's own running loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await self.engine.__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await self.engine.__aexit__(None, None, None)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        doc = json.loads(body)
        result = await self.engine.send(
            Message(
                sender="Shop <shop@sender.example>",
                to=f"{doc['name']} <{doc['to']}>",
                subject="Welcome {{name}}",
                html="<p>Welcome {{name}}</p>",
                data={"name": doc["name"]},
            )
        )
        out = json.dumps(
            {"status": result.status, "code": result.code, "message_id": result.message_id}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out})


def test_concurrent_requests_each_send_one_message(tmp_path: Path) -> None:
    handler = RecordingHandler()
    with SMTPServer(handler) as smtp, Server(App(engine_config(tmp_path, smtp.url))) as web:

        def post(i: int) -> tuple[int, dict[str, Any]]:
            body = json.dumps({"to": f"c{i}@example.com", "name": f"Client {i}"}).encode()
            status, _, data = web.request(
                "POST", "/send", body, {"Content-Type": "application/json"}
            )
            return status, json.loads(data)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(N)))
    assert [status for status, _ in answers] == [200] * N
    assert {doc["status"] for _, doc in answers} == {"delivered"}
    assert {doc["code"] for _, doc in answers} == {250}
    by_id = {parse(got.data)["Message-ID"].strip("<>"): got for got in handler.received}
    assert len(handler.received) == N
    for i, (_, doc) in enumerate(answers):
        got = by_id[doc["message_id"]]
        assert got.rcpt_tos == [f"c{i}@example.com"]
        assert parse(got.data)["Subject"] == f"Welcome Client {i}"
