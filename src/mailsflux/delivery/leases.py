"""Keeping a connection lease alive while its session works.

One batch may wait up to the 600 s end-of-data timeout (RFC 5321
4.5.3.2.6), far longer than a lease lives, so renewing between batches is
not enough: a :class:`LeaseKeeper` renews in the background every
``ttl / 3``. When a renewal fails (the lease expired, or the backend lost
it or cannot be reached) the slot may already be someone else's: the
keeper marks itself :attr:`~LeaseKeeper.lost`, and the session must take
no new batch (the one in flight finishes) and let the lease go.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailsflux.delivery.throttle import Lease


class LeaseKeeper:
    """Renews ``lease`` every ``ttl / 3`` until :meth:`stop` or a failed renewal."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.lost = False
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        every = self.lease.spec.ttl / 3
        while True:
            await asyncio.sleep(every)
            try:
                ok = await self.lease.renew()
            except Exception:  # a backend error: the lease can no longer be vouched for
                ok = False
            if not ok:
                self.lost = True
                return

    async def stop(self) -> None:
        """Stop renewing and give the slot back (a lost one is gone already)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            # The backend may be down; the lease then expires by itself.
            await self.lease.release()
