"""Group commit: the writes asked for in one event-loop turn share one transaction.

A durable acknowledgement needs a commit, and a commit costs far more than
the row it writes; concurrent requests arriving together are therefore
written together, each waiting for the one commit that holds it (what
databases call group commit). A lone request is not delayed: its batch
is written on the next turn of the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``await group(item)``: ``write`` is called with every item asked for in
    this loop turn and returns their results in order (or raises for all)."""

    def __init__(self, write: Callable[[list[T]], Sequence[R]]) -> None:
        self._write = write
        self._items: list[T] = []
        self._waiting: list[asyncio.Future[R]] = []

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._items.append(item)
        self._waiting.append(fut)
        if len(self._items) == 1:
            loop.call_soon(self._commit)
        return await fut

    def _commit(self) -> None:
        # A waiter cancelled before the write was told nothing: its item is
        # not written (stored but unanswered, a retry would send it twice).
        kept = [(i, f) for i, f in zip(self._items, self._waiting, strict=True) if not f.done()]
        self._items, self._waiting = [], []
        if not kept:
            return
        items = [i for i, _ in kept]
        waiting = [f for _, f in kept]
        try:
            results = self._write(items)
        except Exception as exc:
            for fut in waiting:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for fut, r in zip(waiting, results, strict=True):
            if not fut.done():
                fut.set_result(r)
