"""``mailsflux serve``: the front doors and the gateway in one process.

The HTTP API (uvicorn) runs on this process's event loop beside the
gateway's engines, so a request reaches the spool without crossing a
process. Stopping (SIGTERM) closes the listeners first, then lets the
engines finish the messages they hold; what is still in the spool is sent
by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

from mailsflux._files import create_whole
from mailsflux.api import ApiApp
from mailsflux.errors import ConfigError, MailsfluxError
from mailsflux.gateway import Gateway
from mailsflux.server.config import ServerConfig, parse_listen
from mailsflux.tenants import KeyStore
from mailsflux.webhooks import webhooks


def cursor_key(data_dir: Path) -> bytes:
    """The key event cursors are signed with: made once, kept in the data dir."""
    path = data_dir / "cursor.key"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_whole(path, secrets.token_bytes(32))
    return path.read_bytes()


def _lock(data: Path) -> IO[bytes]:
    """One server per data directory: it may then take over what a crashed one held."""
    f = (data / "server.lock").open("ab")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ConfigError(f"another mailsflux serve is using {data}", field="data_dir") from None
    return f


def key_store(config: ServerConfig) -> KeyStore:
    return KeyStore(config.data_path / "keys.db")


class Server:
    """The running server: its gateway, and where each listener listens."""

    def __init__(self, config: ServerConfig, **engine_options: Any) -> None:
        self.config = config
        self.engine_options = engine_options
        self.gateway: Gateway | None = None
        self.http_address: tuple[str, int] | None = None

    async def run(
        self, stop: asyncio.Event, *, ready: Callable[[Server], None] | None = None
    ) -> None:
        """Serve until ``stop`` is set."""
        config = self.config
        data = config.data_path
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = _lock(data)
        keys = key_store(config)
        try:
            gateway = Gateway(
                config.tenant_list(),
                data_dir=data,
                delivery=config.delivery,
                regions={k: str(config.resolve(v)) for k, v in config.regions.items()},
                fsync=config.fsync,
                engine_options=self.engine_options,
                sole=True,
            )
            async with gateway:
                self.gateway = gateway
                async with contextlib.AsyncExitStack() as stack:
                    if config.http is not None:
                        await stack.enter_async_context(self._http(gateway, keys, data))
                    await stack.enter_async_context(webhooks(gateway))
                    await self._check_relay()
                    if ready is not None:
                        ready(self)
                    await stop.wait()
        finally:
            self.gateway = None
            keys.close()
            lock.close()

    async def _check_relay(self) -> None:
        """Say once at start when the relay cannot be reached; accept anyway."""
        from mailsflux.delivery.probe import probe
        from mailsflux.delivery.relay import Relay

        d = self.config.delivery
        if not d.relay:
            return
        try:
            await probe(Relay.parse(d.relay), d.timeout, local_hostname=d.ehlo_name or "localhost")
        except MailsfluxError as exc:
            print(f"mailsflux serve: {exc}; accepting anyway, messages wait in the spool",
                  file=sys.stderr, flush=True)  # fmt: skip

    @contextlib.asynccontextmanager
    async def _http(self, gateway: Gateway, keys: KeyStore, data: Path) -> AsyncIterator[None]:
        import uvicorn

        spec = self.config.http
        assert spec is not None
        host, port = parse_listen(spec.listen, "http.listen")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.http_address = sock.getsockname()[:2]
        app = ApiApp(
            gateway,
            keys,
            cursor_key=cursor_key(data),
            max_body=spec.max_body,
            max_job_body=spec.max_job_body,
            max_upload=spec.max_upload,
            log=sys.stderr if spec.access_log else None,
        )
        cfg = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False, server_header=False
        )
        srv = uvicorn.Server(cfg)
        # uvicorn's serve() would take over SIGINT/SIGTERM, which `serve`
        # handles itself; these are the steps serve() takes, without that.
        cfg.load()
        srv.lifespan = cfg.lifespan_class(cfg)
        await srv.startup(sockets=[sock])
        loop_task = asyncio.ensure_future(srv.main_loop())
        try:
            yield
        finally:
            srv.should_exit = True
            with contextlib.suppress(Exception):
                await loop_task
            await srv.shutdown(sockets=[sock])
            sock.close()
