"""A real ``mailsflux serve`` server (HTTP API on port 0) in a thread, and an HTTP client."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailsflux.jobs.jobfile import DeliverySpec
from mailsflux.server import HTTPSpec, Server, ServerConfig, key_store
from mailsflux.tenants import Tenant


def server_config(
    data_dir: Path, tenants: list[Tenant], delivery: DeliverySpec, **http: Any
) -> ServerConfig:
    return ServerConfig(
        data_dir=str(data_dir),
        http=HTTPSpec(listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", access_log=False, **http),
        delivery=delivery,
        tenants=tenants,
    )


def new_key(config: ServerConfig, tenant: str, *roles: str) -> str:
    with key_store(config) as keys:
        return keys.create(tenant, roles or ("send", "read"))[1]


class Running:
    """The server running on its own event loop until the block ends."""

    def __init__(self, config: ServerConfig) -> None:
        self.server = Server(config)
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def go() -> None:
            self.stop = asyncio.Event()
            await self.server.run(self.stop, ready=lambda _: self.ready.set())

        try:
            self.loop.run_until_complete(go())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.ready.wait(60), "the server did not start"
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the server did not stop"
        self.loop.close()
        if self.error is not None:
            raise self.error

    @property
    def port(self) -> int:
        assert self.server.http_address is not None
        return self.server.http_address[1]

    @property
    def metrics_port(self) -> int:
        assert self.server.metrics_address is not None
        return self.server.metrics_address[1]

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        return call(self.port, method, path, body, key=key, headers=headers, raw=raw)


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request; the JSON answer decoded (text for /metrics)."""
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()
    if hdrs.get("content-type", "").startswith("application/json"):
        return r.status, hdrs, json.loads(payload)
    return r.status, hdrs, payload.decode()


def wait_for(check: Callable[[], Any], seconds: float = 60.0) -> Any:
    """What ``check`` returns once it is true (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def job_finished(srv: Running, job_id: str, key: str, seconds: float = 60.0) -> dict[str, Any]:
    """``GET /v1/jobs/{id}`` until the job is finished with nothing pending; its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        s, _, job = srv.call("GET", f"/v1/jobs/{job_id}", key=key)
        assert s == 200
        if job["state"] == "finished" and job["pending"] == 0:
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
