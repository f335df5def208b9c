"""Prometheus metrics, one registry per app (no process-wide globals)."""

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "droproom_events_total", "Socket.IO events handled", ["event", "outcome"], registry=r
        )
        self.event_seconds = Histogram(
            "droproom_event_seconds",
            "Socket.IO event handling time",
            ["event"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.connections = Gauge("droproom_connections", "Open Socket.IO connections", registry=r)
        self.refused = Counter(
            "droproom_connections_refused_total", "Refused Socket.IO connections", registry=r
        )
        self.http = Counter(
            "droproom_http_requests_total", "HTTP requests", ["method", "status"], registry=r
        )


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
