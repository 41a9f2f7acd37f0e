"""Webhooks: a tenant's events POSTed to its endpoints, signed, at least once.

Each ``[[tenants.webhooks]]`` endpoint has a :class:`Dispatcher` that reads
the tenant's log after the endpoint's own cursor (kept in the log: the
events table is the outbox), POSTs batches of :class:`~mailsflux.events.Event`
as JSON signed with HMAC-SHA256 (:func:`sign`; receivers check with
:func:`verify`), retries with backoff until a 2xx, and only then moves the
cursor. :func:`webhooks` runs them all beside ``mailsflux serve``'s HTTP API.
"""

from mailsflux.webhooks.dispatcher import Batch, Dispatcher, webhooks
from mailsflux.webhooks.signing import HEADER, TOLERANCE, sign, verify

__all__ = ["HEADER", "TOLERANCE", "Batch", "Dispatcher", "sign", "verify", "webhooks"]
