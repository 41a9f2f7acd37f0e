"""The front doors' way in: tenants' messages and jobs accepted durably.

:class:`Gateway` is what the HTTP API and SMTP submission call: it checks
the caller's tenant and roles, stores each message in the tenant's spool
before it answers, and keeps each tenant's events in its own log.
"""

from mailsflux.events import Event
from mailsflux.gateway.gateway import Gateway, JobStatus, request_digest
from mailsflux.gateway.log import TenantLog
from mailsflux.gateway.metrics import Metrics
from mailsflux.gateway.retention import (
    RetentionSpec,
    Sweeps,
    add_counts,
    sweep_events_files,
    sweep_quarantine,
    sweep_spool,
    sweep_tenant,
    tenant_due,
)

__all__ = [
    "Event",
    "Gateway",
    "JobStatus",
    "Metrics",
    "RetentionSpec",
    "Sweeps",
    "TenantLog",
    "add_counts",
    "request_digest",
    "sweep_events_files",
    "sweep_quarantine",
    "sweep_spool",
    "sweep_tenant",
    "tenant_due",
]
