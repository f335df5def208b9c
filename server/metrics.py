"""Prometheus metrics, one registry per app (no process-wide globals), the
middleware that counts HTTP requests, and `/metrics` in the format the
scraper asks for (OpenMetrics by `Accept`, the text format otherwise).

Workers (`serve --workers N`): the parent sets PROMETHEUS_MULTIPROC_DIR
(under the data dir, emptied at start), so every worker writes its values
to files there and a scrape of any worker reads them all: counters and
histograms summed over the node's workers, gauges as their
`multiprocess_mode` says (`livesum`: the sum over the live workers;
`mostrecent`: the last value any worker set). Collectors of live state
(open media sessions) answer for the worker scraped, labelled `worker`."""

import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from server.appkeys import SETTINGS

# Any other method is counted as "other": a client must not mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        self.connections = Gauge(
            "droproom_connections",
            "Open Socket.IO connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.refused = Counter(
            "droproom_connections_refused_total", "Refused Socket.IO connections", registry=r
        )
        self.http = Counter(
            "droproom_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "droproom_http_request_seconds",
            "HTTP request handling time by route template",
            ["route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        # delivery (issue 10): p50/p95/p99 by histogram_quantile over these
        fine = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
        self.delivery_seconds = Histogram(
            "droproom_delivery_seconds",
            "Time from a payment fact reaching settlement to the buyer's download links issued",
            registry=r,
            buckets=fine,
        )
        self.download_links = Counter(
            "droproom_download_links",
            "Download links issued, by format",
            ["format"],
            registry=r,
        )
        self.downloads = Counter(
            "droproom_downloads",
            "Downloads served from local storage (200 and 206), by format",
            ["format"],
            registry=r,
        )
        self.download_seconds = Histogram(
            "droproom_download_seconds",
            "Time to serve one download from local storage, by format",
            ["format"],
            registry=r,
            buckets=fine,
        )
        self.downloads_refused = Counter(
            "droproom_downloads_refused",
            "Download requests refused (tampered, foreign or expired links)",
            registry=r,
        )
        # workers (issue 14): long-polling requests for another worker's session
        self.handoffs = Counter(
            "droproom_polling_handoffs",
            "Long-polling requests handed to the worker holding their session, by outcome"
            " (handed; gone: that worker is no more, the client connects again)",
            ["outcome"],
            registry=r,
        )
        # roomrelay (issue 14): Socket.IO relay messages this process published or decoded
        self.relay_messages = Counter(
            "droproom_relay_messages",
            "Socket.IO relay messages between processes, published or received (decoded)",
            ["direction"],
            registry=r,
        )


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Live(Collector):
    """This worker's collectors of live state, with a `worker` label."""

    def __init__(self, collectors: list[Collector], worker: str) -> None:
        self._collectors = collectors
        self._worker = worker

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            for metric in collector.collect():
                for sample in metric.samples:
                    sample.labels["worker"] = self._worker
                yield metric


def node_registry(own: CollectorRegistry, worker: str) -> CollectorRegistry:
    """What one scrape shows in a node of workers: every worker's metrics
    from the shared directory, plus this worker's live collectors."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    # The registry keeps no public list of its collectors.
    live = [c for c in own._collector_to_names if not isinstance(c, MetricWrapperBase)]
    if live:
        registry.register(_Live(live, worker))
    return registry


async def handle_metrics(request: web.Request) -> web.Response:
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    registry = request.app[METRICS].registry
    if multiprocess_dir():
        registry = node_registry(registry, request.app[SETTINGS].worker)
    body = encode(registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


def route_of(request: web.Request) -> str:
    """The route's template (`/api/v1/rooms/{room}`), never the raw path."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: counts the status the client gets, errors translated or not."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics, route = request.app[METRICS], route_of(request)
        method = request.method if request.method in METHODS else "other"
        metrics.http.labels(method, route, str(status)).inc()
        metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
