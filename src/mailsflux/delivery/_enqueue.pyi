"""Type stub: a run of messages queued in C (core/mailsflux/delivery/_enqueue.pyx)."""

from collections.abc import Callable, Sequence
from typing import Any

from mailsflux.types import RenderedMessage

def queue_run(
    msgs: Sequence[RenderedMessage],
    i: int,
    stop: int,
    routes: dict[str, Any],
    key: str,
    tls: object,
    queue: Any,
    item: Callable[[RenderedMessage, float], Any],
    now: float,
    look: Callable[[dict[str, Any], str], Any],
) -> int:
    """Append ``item(msgs[j], now)`` to ``queue`` while message j is bound
    for this queue (key ``key``, TLS policy None or ``tls``) by ``routes``
    (a domain not there looked up by ``look(routes, domain)``); the first
    ``j`` not appended."""

def take(queue: Any, n: int) -> list[Any]:
    """Up to ``n`` items from the front of ``queue``, in order, each marked not done."""
