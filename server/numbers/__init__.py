"""The event numbers at the edge (issue 13): `routes` (the report as JSON,
CSV and a chart, the room's order list, a drop's log), `live` (the
`stats:updated` tick, once per room), `audio` (listener health across
processes), `metrics` (the business figures for Prometheus). `setup` wires
them into the app."""

from aiohttp import web

from server.appkeys import SCHEDULER, SNAPSHOT_PARTS
from server.numbers import metrics, routes
from server.numbers.live import STATS, STATS_EVERY_S, StatsPublisher, snapshot_part


def setup(app: web.Application) -> None:
    app.router.add_routes(routes.routes)
    app[STATS] = publisher = StatsPublisher(app)
    app[SCHEDULER].every(STATS_EVERY_S, publisher.tick)
    app[SNAPSHOT_PARTS].append(snapshot_part(app))
    metrics.setup(app)
