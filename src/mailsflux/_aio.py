"""Waiting on an :class:`asyncio.Event` with a timeout, without losing a cancel.

On Python 3.11 ``asyncio.wait_for(event.wait(), t)`` returns normally when the
event is set in the same loop step as the waiting task is cancelled: the
cancellation is swallowed (CPython gh-86296, fixed in 3.12 by rebuilding
``wait_for`` on ``asyncio.timeout``). A loop around such a wait then never
sees its cancel, and whoever awaits the task hangs: a ``serve`` stop did, when
a webhook's news arrived as its dispatcher was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """True once ``event`` is set, False after ``timeout`` seconds (a cancel
    that races the wake-up is kept: see :func:`within`)."""
    try:
        await within(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """``await awaitable``, or :class:`TimeoutError` after ``timeout`` seconds.

    What ``asyncio.wait_for`` does, without its 3.11 flaw: a cancel arriving
    as the awaited call finishes (a webhook POST refused just as ``serve``
    stops) is kept, where ``wait_for`` returned the result or raised the
    call's own error and the caller's retry loop went on for ever.
    """
    async with asyncio.timeout(timeout):
        return await awaitable
