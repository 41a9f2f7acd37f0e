"""What ``GET /metrics`` shows, in the Prometheus text format (prometheus_client).

One registry per server, not the library's global one: two servers in one
process (the tests) keep their own counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


#: Per tenant: its name, spool directory, messages in flight, and per site
#: (messages queued, sessions open).
TenantStats = tuple[str, Path, int, dict[str, tuple[int, int]]]


class _Spools(Collector):
    """Read at each scrape: spool sizes, messages in flight, site queues, per tenant."""

    def __init__(self, source: Callable[[], Iterator[TenantStats]]) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size = GaugeMetricFamily(
            "mailsflux_spool_bytes", "Bytes of the tenant's spool database", labels=["tenant"]
        )
        flight = GaugeMetricFamily(
            "mailsflux_messages_in_flight",
            "Messages handed to the sender and not yet settled",
            labels=["tenant"],
        )
        depth = GaugeMetricFamily(
            "mailsflux_site_queue_depth",
            "Messages waiting for a session to a site",
            labels=["tenant", "site"],
        )
        sessions = GaugeMetricFamily(
            "mailsflux_site_connections", "Open SMTP sessions to a site", labels=["tenant", "site"]
        )
        for tenant, spool_dir, in_flight, sites in self.source():
            total = sum(p.stat().st_size for p in spool_dir.glob("spool.db*") if p.is_file())
            size.add_metric([tenant], float(total))
            flight.add_metric([tenant], float(in_flight))
            for site, (queued, open_) in sites.items():
                depth.add_metric([tenant, site], float(queued))
                sessions.add_metric([tenant, site], float(open_))
        yield size
        yield flight
        yield depth
        yield sessions


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accepted = Counter(
            "mailsflux_accepted_messages",
            "Messages accepted and stored, by front door",
            ["door"],
            registry=self.registry,
        )
        self.refused = Counter(
            "mailsflux_refused_requests",
            "Requests and submissions refused, by front door and reason",
            ["door", "reason"],
            registry=self.registry,
        )
        self.results = Counter(
            "mailsflux_delivery_results",
            "Delivery results by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mailsflux_request_seconds",
            "Time from a request or submission to its answer",
            ["door"],
            buckets=_LATENCY,
            registry=self.registry,
        )
        self.delivery = Histogram(
            "mailsflux_delivery_seconds",
            "Time from acceptance to a message's first result (delivered, deferred, bounced...)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=self.registry,
        )
        self.connections = Counter(
            "mailsflux_connections",
            "Connections opened to the front doors",
            ["door"],
            registry=self.registry,
        )

    def watch_spools(self, source: Callable[[], Iterator[TenantStats]]) -> None:
        self.registry.register(_Spools(source))

    def text(self) -> bytes:
        return generate_latest(self.registry)
