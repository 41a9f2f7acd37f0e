"""A small blocking facade for scripts: the Engine on a private event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from mailsflux.engine.config import Config, DKIMKey, Tracking
from mailsflux.engine.engine import Engine, ResultCallback
from mailsflux.engine.message import Batch, Message
from mailsflux.errors import ConfigError
from mailsflux.types import DeliveryResult, JobSummary

T = TypeVar("T")


class SyncEngine:
    """``with SyncEngine(config) as e: e.send(message)``; the same arguments as
    :class:`Engine`. Safe to call from any thread (each call blocks until done);
    ``on_result`` runs on the engine's own thread.
    """

    def __init__(
        self,
        config: Config | str | Path | None = None,
        *,
        relay: str | None = None,
        dkim: DKIMKey | list[DKIMKey] | None = None,
        tracking: Tracking | None = None,
        throttle: str | None = None,
        on_result: ResultCallback | None = None,
    ) -> None:
        self.engine = Engine(
            config,
            relay=relay,
            dkim=dkim,
            tracking=tracking,
            throttle=throttle,
            on_result=on_result,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SyncEngine:
        if self._loop is not None:  # checked before a second loop and thread exist
            raise ConfigError("this SyncEngine is already entered")
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="mailsflux", daemon=True)
        self._thread.start()
        try:
            self._call(self.engine.__aenter__())
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._call(self.engine.__aexit__(exc_type, exc, tb))
        finally:
            self._stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise ConfigError("use SyncEngine as `with SyncEngine(...) as engine:` first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and self._thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()

    def send(self, message: Message) -> DeliveryResult:
        """Send one message and return its result (see :meth:`Engine.send`)."""
        return self._call(self.engine.send(message))

    def run(self, job: str | Path | Batch) -> JobSummary:
        """Run a batch job to its end and return the summary."""

        async def go() -> JobSummary:
            return await (await self.engine.submit(job)).wait()

        return self._call(go())


__all__ = ["SyncEngine"]
