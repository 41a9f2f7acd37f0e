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
import secrets
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from mailsflux._files import create_whole
from mailsflux.api import ApiApp, MetricsApp
from mailsflux.errors import ConfigError, MailsfluxError
from mailsflux.gateway import (
    Gateway,
    RetentionSpec,
    Sweeps,
    add_counts,
    sweep_events_files,
    sweep_quarantine,
    sweep_spool,
    tenant_due,
)
from mailsflux.gateway.gateway import lock_dir
from mailsflux.letters.jobfile import CarrierSpec
from mailsflux.server.config import ServerConfig, parse_listen
from mailsflux.tenants import KeyStore, Tenants
from mailsflux.webhooks import webhooks


def cursor_key(data_dir: Path) -> bytes:
    """The key event cursors are signed with: made once, kept in the data dir."""
    path = data_dir / "cursor.key"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_whole(path, secrets.token_bytes(32))
    return path.read_bytes()


def _counts(done: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(done.items()) if v)


def key_store(config: ServerConfig) -> KeyStore:
    return KeyStore(config.data_path / "keys.db")


class Server:
    """The running server: its gateway, and where each listener listens."""

    def __init__(
        self, config: ServerConfig, *, job_spool: Path | None = None, **engine_options: Any
    ) -> None:
        self.config = config
        #: The job-file spool ``serve``'s queue runs: swept with the tenants'.
        self.job_spool = job_spool
        self.engine_options = engine_options
        self.gateway: Gateway | None = None
        self.http_address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.bounces_address: tuple[str, int] | None = None
        self.submission_ports: dict[str, int] = {}

    async def run(
        self, stop: asyncio.Event, *, ready: Callable[[Server], None] | None = None
    ) -> None:
        """Serve until ``stop`` is set."""
        config = self.config
        data = config.data_path
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = lock_dir(data, "the data directory")
        keys = key_store(config)
        try:
            gateway = Gateway(
                config.tenant_list(),
                data_dir=data,
                delivery=config.delivery,
                regions={k: str(config.resolve(v)) for k, v in config.regions.items()},
                fsync=config.fsync,
                # Checked here per tenant (below), not again by each engine.
                engine_options={
                    "check_authentication": False,
                    **config.redis_options,
                    **self.engine_options,
                },
                sole=True,
                letters=_letters(config),
            )
            async with gateway:
                self.gateway = gateway
                # After the gateway opened: keys with generate = true exist now.
                await self._check_authentication(config.tenant_list())
                async with contextlib.AsyncExitStack() as stack:
                    if config.http is not None:
                        await stack.enter_async_context(self._http(gateway, keys, data))
                    await stack.enter_async_context(self._sweeping(gateway, keys))
                    if config.letters is not None:
                        await stack.enter_async_context(self._tracking(gateway, config.letters))
                    if config.bounces is not None:
                        await stack.enter_async_context(self._bounces())
                    if config.submission is not None:
                        await stack.enter_async_context(self._submission(gateway, keys))
                    await stack.enter_async_context(webhooks(gateway))
                    await self._check_relay()
                    if ready is not None:
                        ready(self)
                    await stop.wait()
        finally:
            self.gateway = None
            keys.close()
            lock.close()

    @contextlib.asynccontextmanager
    async def _tracking(self, gateway: Gateway, spec: CarrierSpec) -> AsyncIterator[None]:
        """Letters' tracking asked for every ``poll_seconds`` (events into
        the tenants' logs, so webhooks carry them)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(max(spec.poll_seconds, 1.0))
                try:
                    await gateway.track_letters(self.config.retention)
                except Exception as exc:  # a carrier down: next time
                    print(f"mailsflux serve: letter tracking failed: {exc}", file=sys.stderr)

        async with _in_background(loop()):
            yield

    @contextlib.asynccontextmanager
    async def _sweeping(self, gateway: Gateway, keys: KeyStore) -> AsyncIterator[None]:
        """Retention sweeps every ``interval_hours`` while serving."""
        spec = self.config.retention

        async def loop() -> None:
            while True:
                # Each store on its own: one that fails (a locked or full
                # disk, a damaged file) is named, and the others still go.
                sweeps = Sweeps()
                try:
                    cancelled = keys.cancelled_tenants()
                    part = await gateway.sweep(spec, cancelled=cancelled, failed=sweeps.failed)
                    add_counts(sweeps.done, part)
                    for name in [
                        n for n in cancelled if tenant_due(cancelled, n, spec, time.time())
                    ]:
                        keys.forget_tenant(name)  # its data went with its folder
                except Exception as exc:
                    sweeps.failed.append(f"tenants: {exc}")
                await asyncio.to_thread(self._sweep_files, sweeps, spec, time.time())
                if any(sweeps.done.values()):
                    print(f"mailsflux serve: retention: {_counts(sweeps.done)}", file=sys.stderr)
                for failure in sweeps.failed:  # next time again
                    print(f"mailsflux serve: retention sweep failed: {failure}", file=sys.stderr)
                await asyncio.sleep(max(spec.interval_hours, 0.001) * 3600)

        async with _in_background(loop()):
            yield

    def _sweep_files(self, sweeps: Sweeps, spec: RetentionSpec, now: float) -> None:
        """The events files, the quarantine and the job spool, each on its own."""
        for path in self.config.events_files():
            sweeps.run(f"events file {path}", partial(sweep_events_files, [path], spec, now))
        if (quarantine := self.config.quarantine_dir()) is not None:
            sweeps.run(f"quarantine {quarantine}", lambda: sweep_quarantine(quarantine, spec, now))
        if (job_spool := self.job_spool) is not None:
            sweeps.run(f"spool {job_spool}", lambda: sweep_spool(job_spool, spec, now))

    async def _check_authentication(self, tenants: Tenants) -> None:
        """Every tenant's DKIM keys, and every domain it lists with the key
        that signs it (alignment per domain), against DNS once at start, by
        ``[delivery] authentication``: under "enforce" serve does not start."""
        from mailsflux.authcheck import Checker, signing_key
        from mailsflux.delivery.relay import Relay

        d = self.config.delivery
        relay = Relay.parse(d.relay) if d.relay else None
        checker = Checker()

        def warn(message: str) -> None:
            print(f"mailsflux serve: {message}", file=sys.stderr, flush=True)

        for t in tenants:
            pairs = [(k.domain, k) for k in t.dkim]
            pairs += [(n, k) for n in t.domains if (k := signing_key(n, t.dkim)) is not None]
            seen: set[tuple[str, str]] = set()
            for domain, k in pairs:
                if (domain.lower(), k.key) in seen:
                    continue
                seen.add((domain.lower(), k.key))
                what = f"serve (tenant {t.name!r})"
                await checker.key(d, k, relay, domain, what, warn)

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
        spec = self.config.http
        assert spec is not None
        app = ApiApp(
            gateway,
            keys,
            cursor_key=cursor_key(data),
            max_body=spec.max_body,
            max_job_body=spec.max_job_body,
            max_upload=spec.max_upload,
            log=sys.stderr if spec.access_log else None,
        )
        tls = self.config.http_tls()
        async with _uvicorn(app, spec.listen, "http.listen", self._grace, tls) as where:
            self.http_address = where
            if spec.metrics_listen:
                metrics = MetricsApp(gateway)
                async with _uvicorn(
                    metrics, spec.metrics_listen, "http.metrics_listen", self._grace
                ) as m:
                    self.metrics_address = m
                    yield
            else:
                yield

    @contextlib.asynccontextmanager
    async def _submission(self, gateway: Gateway, keys: KeyStore) -> AsyncIterator[None]:
        """SMTP submission: closed first on stop, its spool writes finish."""
        from mailsflux.submission import start_submission

        spec = self.config.submission
        assert spec is not None
        server = await start_submission(gateway, keys, spec, base=self.config.base or ".")
        self.submission_ports = dict(server.ports)
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    @contextlib.asynccontextmanager
    async def _bounces(self) -> AsyncIterator[None]:
        """The bounce domain's SMTP listener (``bounces listen``, inside serve)."""
        from mailsflux.feedback import BounceListener, Ingestor, Verp
        from mailsflux.sealedlines import EVENTS_KEY_FILE, load_keys
        from mailsflux.tracking.config import load_config

        spec = self.config.bounces
        assert spec is not None
        r = self.config.resolve
        cfg = load_config(r(spec.tracking)) if spec.tracking else None
        verp = None
        if spec.bounce_domain and cfg is not None:
            verp = Verp(cfg.keys, cfg.current_key, spec.bounce_domain)
        store = cfg.open_store() if cfg is not None else None
        try:
            ingestor = Ingestor(
                quarantine=r(spec.quarantine),
                events=r(spec.events) if spec.events else None,
                store=store,
                suppression_list=r(spec.suppression_list) if spec.suppression_list else None,
                verp=verp,
                keys=load_keys(self.config.data_path / EVENTS_KEY_FILE),
            )
            with ingestor:
                listener = BounceListener(ingestor, verp, spec.feedback_addresses)
                host, port = parse_listen(spec.listen, "bounces.listen")
                try:
                    self.bounces_address = await listener.start(host, port)
                except OSError as exc:
                    raise ConfigError(
                        f"bounces.listen: cannot listen on {spec.listen}: {exc.strerror}",
                        field="bounces.listen",
                    ) from None
                try:
                    yield
                finally:
                    await listener.close()
        finally:
            if store is not None:
                store.close()

    @property
    def _grace(self) -> float:
        return self.config.delivery.stop_grace


@contextlib.asynccontextmanager
async def _uvicorn(
    app: Any, listen: str, what: str, grace: float, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, int]]:
    """``app`` served by uvicorn on this loop at ``listen``; yields the address."""
    import uvicorn

    host, port = parse_listen(listen, what)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"{what}: cannot listen on {listen}: {exc.strerror}", field=what
        ) from None
    cfg = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        # A client that never finishes its body must not hold a stop forever.
        timeout_graceful_shutdown=max(int(grace), 1),
    )
    srv = uvicorn.Server(cfg)
    # uvicorn's serve() would take over SIGINT/SIGTERM, which `serve`
    # handles itself; these are the steps serve() takes, without that.
    cfg.load()
    if tls is not None:
        cfg.ssl = tls  # ours: uvicorn's own context sets no protocol floor
    srv.lifespan = cfg.lifespan_class(cfg)
    await srv.startup(sockets=[sock])
    loop_task = asyncio.ensure_future(srv.main_loop())
    try:
        yield sock.getsockname()[:2]
    finally:
        srv.should_exit = True
        with contextlib.suppress(Exception):
            await loop_task
        await srv.shutdown(sockets=[sock])
        sock.close()


def _letters(config: ServerConfig) -> CarrierSpec | None:
    """``[letters]`` with its drop folder relative to the config file."""
    spec = config.letters
    if spec is None or spec.kind != "file":
        return spec
    return msgspec.structs.replace(spec, dir=str(config.resolve(spec.dir)))


@contextlib.asynccontextmanager
async def _in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``work`` runs while the block does, and is cancelled when it ends."""
    task = asyncio.ensure_future(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
