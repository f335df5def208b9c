"""The operator's routes: `/healthz` (is the store reachable; which node and
which of its worker processes answered) and `/metrics` (Prometheus text).
Features own their routes; these belong to none."""

from aiohttp import web

from server.appkeys import REDIS, SETTINGS
from server.metrics import handle_metrics


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    where = {"node": settings.node, "worker": settings.worker}
    try:
        await request.app[REDIS].ping()
    except Exception:
        return web.json_response({"ok": False, "redis": "unreachable", **where}, status=503)
    return web.json_response({"ok": True, **where})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", handle_metrics)
