"""Type stub: a delivered batch settled in C (core/mailsflux/delivery/_results.pyx)."""

from collections.abc import Callable
from typing import Any

from mailsflux.types import DeliveryResult, RenderedMessage

def messages(batch: list[Any]) -> list[RenderedMessage]:
    """The messages of a batch of the scheduler's items, in order."""

def all_delivered(outcomes: list[Any]) -> bool:
    """True when there is an outcome and every one is "delivered"."""

def delivered(
    batch: list[Any],
    outcomes: list[Any],
    result: type[DeliveryResult],
    enhanced: Callable[[str], str | None],
    prefix: Callable[[str], str | None] | None = None,
) -> list[DeliveryResult]:
    """Settle the first ``len(outcomes)`` items, all delivered: each counted
    an attempt and done; their results, as the scheduler makes them."""
