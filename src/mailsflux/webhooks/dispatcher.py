"""One task per endpoint: the tenant's events after the endpoint's cursor,
POSTed in signed batches until a 2xx, then the cursor moves on.

The tenant's events table is the outbox: nothing is copied for an endpoint,
so an endpoint that is down for a day loses nothing and costs no space but
its cursor. The cursor is committed after each 2xx and before the next
batch is read, so a stop (or a crash) resends at most the batch in flight:
delivery is at least once, and receivers drop repeats by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import threading
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import msgspec

from mailsflux._aio import wait_event
from mailsflux.events import Event
from mailsflux.gateway import Gateway, TenantLog
from mailsflux.tenants import WebhookSpec
from mailsflux.webhooks.client import Client, PostError
from mailsflux.webhooks.signing import HEADER, sign

#: Seconds between looks at the log when no commit said there is news
#: (a safety net: commits wake the dispatcher at once).
_IDLE = 5.0


class Batch(msgspec.Struct, kw_only=True):
    """A webhook POST's body."""

    events: list[Event]


_enc = msgspec.json.Encoder()


class Dispatcher:
    """Deliver one tenant's events to one endpoint, in order, until cancelled."""

    def __init__(
        self,
        tenant: str,
        spec: WebhookSpec,
        log: TenantLog,
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.tenant = tenant
        self.spec = spec
        self.log = log
        self.client = Client(spec.url, timeout=spec.timeout, ca_file=spec.ca_file)
        self.types = frozenset(spec.events)
        self.say = say or _stderr
        #: Events acknowledged (2xx) and POSTs made, since start.
        self.delivered = 0
        self.posts = 0
        self._wake = asyncio.Event()
        self._version = _version()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        home = threading.get_ident()

        def news() -> None:
            if threading.get_ident() == home:
                self._wake.set()
            else:
                loop.call_soon_threadsafe(self._wake.set)

        unwatch = self.log.watch(news)
        try:
            after = self.log.webhook_cursor(self.spec.key)
            while True:
                self._wake.clear()
                events = self.log.events(after=after, limit=self.spec.batch_size)
                if not events:
                    await wait_event(self._wake, _IDLE)
                    continue
                wanted = [e for e in events if not self.types or e.type in self.types]
                if wanted:
                    await self._deliver(wanted)
                after = events[-1].position
                self.log.set_webhook_cursor(self.spec.key, after)
        finally:
            unwatch()
            self.client.close()

    async def _deliver(self, events: list[Event]) -> None:
        """POST until a 2xx, waiting longer after each failure."""
        body = _enc.encode(Batch(events=events))
        failures = 0
        while True:
            # Signed anew for each try: a retry an hour later is still fresh.
            headers = [
                ("Content-Type", "application/json"),
                ("User-Agent", f"mailsflux/{self._version}"),
                (HEADER, sign(self.spec.secret, body)),
                ("Mailsflux-Tenant", self.tenant),
                ("Mailsflux-Events", f"{events[0].id}..{events[-1].id}"),
            ]
            self.posts += 1
            try:
                status = await self.client.post(body, headers)
                problem = "" if 200 <= status < 300 else f"HTTP {status}"
            except PostError as exc:
                problem = str(exc)
            if not problem:
                if failures:
                    self.say(f"webhook {self.where()}: delivering again")
                self.delivered += len(events)
                return
            failures += 1
            delay = min(self.spec.retry_max, self.spec.retry_initial * 2 ** min(failures - 1, 40))
            if failures == 1 or delay >= self.spec.retry_max:
                # Once when it starts failing, then at most once per retry_max.
                self.say(f"webhook {self.where()}: {problem}; retrying, events wait in the log")
            await asyncio.sleep(delay * (0.5 + random.random() / 2))

    def where(self) -> str:
        return f"{self.tenant}/{self.spec.name or _mask(self.spec.url)}"


async def _keep_running(d: Dispatcher) -> None:
    """A dispatcher that fails (the log cannot be read) starts again: its
    cursor says where it was."""
    while True:
        try:
            await d.run()
        except Exception as exc:
            d.say(f"webhook {d.where()}: stopped ({exc}); starting again in {_IDLE:g} s")
            await asyncio.sleep(_IDLE)


def _mask(url: str) -> str:
    """A url as logs show it: no credentials, no query (tokens live there)."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc.rpartition('@')[2]}{u.path}"


def _stderr(line: str) -> None:
    print(f"mailsflux serve: {line}", file=sys.stderr, flush=True)


def _version() -> str:
    from mailsflux import __version__

    return __version__


@contextlib.asynccontextmanager
async def webhooks(gateway: Gateway) -> AsyncIterator[list[Dispatcher]]:
    """Every tenant's endpoints delivered to while the block runs."""
    dispatchers = [
        Dispatcher(t.name, spec, gateway.tenant_log(t.name))
        for t in gateway.tenants
        for spec in t.webhooks
    ]
    tasks = [asyncio.ensure_future(_keep_running(d)) for d in dispatchers]
    try:
        yield dispatchers
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
