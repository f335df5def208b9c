"""The browser pages: the lobby (`/`), the listener room (`/r/{room}`), the
host console (`/host/{room}`), the page a sign-in link opens (`/signin`), a
buyer's account (`/me`), the creator studio (`/studio`), a replay
(`/replay/{room}/{id}`), their ES modules, styles and icon (`/static/...`,
`/favicon.ico`),
the Socket.IO browser client from npm (`/vendor/...`) and the small public
config a page needs (`/api/v1/config`).

Pages are static files; they speak only the wire contract (PROTOCOL.md).
Tokens travel in the URL fragment, so they never reach this server's logs.
Must not import any domain package (the shop's edge says where Stripe.js is).
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from server import csp
from server.appkeys import SETTINGS
from server.shop.resources import SHOP, stripe_js_url

logger = logging.getLogger(__name__)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "web_client"
PAGES_DIR = CLIENT_DIR / "pages"
STATIC_DIR = CLIENT_DIR / "static"
VENDOR_FILES = {
    "socket.io.esm.min.js": CLIENT_DIR / "node_modules/socket.io-client/dist/socket.io.esm.min.js",
    "socket.io.esm.min.js.map": CLIENT_DIR
    / "node_modules/socket.io-client/dist/socket.io.esm.min.js.map",
    # uPlot (npm `uplot`): the host console's live charts (issue 13).
    "uPlot.esm.js": CLIENT_DIR / "node_modules/uplot/dist/uPlot.esm.js",
    "uPlot.min.css": CLIENT_DIR / "node_modules/uplot/dist/uPlot.min.css",
    # hls.js (npm `hls.js`): the listener's HLS fallback without Safari's own HLS (issue 15).
    "hls.light.min.mjs": CLIENT_DIR / "node_modules/hls.js/dist/hls.light.min.mjs",
    "hls.light.min.mjs.map": CLIENT_DIR / "node_modules/hls.js/dist/hls.light.min.mjs.map",
    "hls.worker.js": CLIENT_DIR / "node_modules/hls.js/dist/hls.worker.js",
}

# Pages carry no caching; `server.csp` adds the security headers (CSP, no
# framing, no referrer: the fragment never leaves anyway) to every response.
PAGE_HEADERS = {"Cache-Control": "no-cache"}

routes = web.RouteTableDef()


def _page(name: str) -> Callable[[web.Request], Any]:
    path = PAGES_DIR / name

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers=PAGE_HEADERS)

    return handler


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.FileResponse:
    # Browsers and crawlers ask for it without reading the pages' <link rel=icon>.
    return web.FileResponse(
        STATIC_DIR / "favicon.svg",
        headers={"Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"},
    )


@routes.get("/vendor/{name}")
async def vendor(request: web.Request) -> web.FileResponse:
    path = VENDOR_FILES.get(request.match_info["name"])
    if path is None or not path.exists():
        raise web.HTTPNotFound(text="not found")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def page_config(app: web.Application) -> dict[str, Any]:
    """What a page needs to know that is not in any token: where Stripe.js is,
    the publishable key if configured, and the ICE servers for WebRTC."""
    settings = app[SETTINGS]
    shop = app.get(SHOP)
    key = shop.gateway.publishable_key if shop else settings.stripe_publishable_key
    config: dict[str, Any] = {
        "stripe_js_url": stripe_js_url(app),
        "publishable_key": key,
        "ice_servers": [dict(s) for s in settings.ice_servers],
    }
    return config


@routes.get("/api/v1/config")
async def get_config(request: web.Request) -> web.Response:
    return web.json_response(page_config(request.app), headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", _page("lobby.html"), name="lobby")
    app.router.add_get("/r/{room}", _page("room.html"), name="room_page")
    app.router.add_get("/host/{room}", _page("host.html"), name="host_page")
    # Buyers (issue 11): the page a sign-in link opens, and the account's page.
    app.router.add_get("/signin", _page("signin.html"), name="signin_page")
    app.router.add_get("/me", _page("me.html"), name="me_page")
    # Replays (issue 13): one recording with its shoppable moments.
    app.router.add_get("/replay/{room}/{id}", _page("replay.html"), name="replay_page")
    # Creator studio (issue 12): a creator's rooms, products, episodes and team.
    app.router.add_get("/studio", _page("studio.html"), name="studio_page")
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.add_routes(routes)
    csp.setup(app, stripe_js_url)
