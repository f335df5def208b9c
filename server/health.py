"""The operator's routes: `/healthz` (is the store reachable) and `/metrics`
(Prometheus text). Features own their routes; these belong to none."""

from aiohttp import web

from server.appkeys import REDIS
from server.metrics import handle_metrics


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except Exception:
        return web.json_response({"ok": False, "redis": "unreachable"}, status=503)
    return web.json_response({"ok": True})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", handle_metrics)
