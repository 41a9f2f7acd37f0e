"""Per-site and per-job throttles: GCRA rates and connection leases.

A thin re-export of :mod:`mailsflux._throttle` (interface, specs,
in-process backend) and :mod:`mailsflux._throttle_redis` (the shared Redis
backend; importing it needs the ``redis`` package, so it is loaded on first
use of :class:`RedisThrottles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailsflux._throttle import (
    ConcurrencySpec,
    Grant,
    Lease,
    LocalThrottles,
    RateSpec,
    ThrottleBackendError,
    Throttles,
)

if TYPE_CHECKING:
    from mailsflux._throttle_redis import RedisThrottles

__all__ = [
    "ConcurrencySpec",
    "Grant",
    "Lease",
    "LocalThrottles",
    "RateSpec",
    "RedisThrottles",
    "ThrottleBackendError",
    "Throttles",
]


def __getattr__(name: str) -> Any:
    if name == "RedisThrottles":
        from mailsflux._throttle_redis import RedisThrottles

        return RedisThrottles
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
