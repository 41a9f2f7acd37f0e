"""Running a coroutine until it ends or a stop is asked for (a signal, a caller)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def run_until(coro: Coroutine[Any, Any, None], stop: asyncio.Event | None) -> bool:
    """Await ``coro``; True when it finished, False when ``stop`` was set first.

    On a stop the coroutine is cancelled and awaited, so nothing of it runs on.
    Its exceptions propagate either way.
    """
    if stop is None:
        await coro
        return True
    work = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if work.done():
        work.result()
        return True
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return False


__all__ = ["run_until"]
