"""Security headers on every response: a strict Content-Security-Policy
built from configuration, no framing, no MIME sniffing, no referrer.

The policy allows this server's own files and sockets, Stripe.js (its
origin from the settings or the embedded localstripe; Stripe's own frames
and API when it is Stripe's), `blob:` for audio and for images a page
fetched with its bearer token (the report's chart), and the storage or CDN
origins of `DROPROOM_ASSET_ORIGINS` and `DROPROOM_HLS_BASE_URL`. No inline
script or style is allowed: pages load their code and styles from
`/static/`. Must not import any domain package.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from server.appkeys import SETTINGS

# Stripe's documented needs beyond the script's own origin (docs.stripe.com/security/guide).
STRIPE_JS_HOSTS = ("https://js.stripe.com", "https://*.js.stripe.com")
STRIPE_FRAMES = (*STRIPE_JS_HOSTS, "https://hooks.stripe.com")
STRIPE_API = ("https://api.stripe.com",)

FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def socket_origins(public_url: str) -> tuple[str, ...]:
    """The websocket origins of our own address (older browsers do not count
    ws: and wss: as 'self')."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return (f"{scheme}://{parts.netloc}",)


@dataclass(frozen=True, slots=True)
class Sources:
    public_url: str
    stripe_js_url: str
    asset_origins: tuple[str, ...] = ()

    @property
    def is_stripes(self) -> bool:
        return urlsplit(self.stripe_js_url).hostname == "js.stripe.com"


def policy(src: Sources) -> str:
    stripe = origin(src.stripe_js_url)
    scripts = STRIPE_JS_HOSTS if src.is_stripes else (stripe,)
    frames = STRIPE_FRAMES if src.is_stripes else (stripe,)
    api = STRIPE_API if src.is_stripes else (stripe,)
    assets = src.asset_origins
    directives: dict[str, Iterable[str]] = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *scripts],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *assets],
        "media-src": ["'self'", "blob:", *assets],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *socket_origins(src.public_url), *api, *assets],
        "frame-src": list(frames),
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    # dict.fromkeys: each source once, in order
    parts = (f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items())
    return "; ".join(parts)


class Headers:
    """The headers for this app, built once its Stripe.js URL is known."""

    def __init__(self, stripe_js_url: Callable[[web.Application], str]) -> None:
        self._stripe_js_url = stripe_js_url
        self._built: dict[str, str] | None = None

    def of(self, app: web.Application) -> dict[str, str]:
        if self._built is None:
            settings = app[SETTINGS]
            assets = settings.asset_origins
            if settings.hls_base_url:  # the CDN in front of HLS segments (server.audio.hls)
                assets = (*assets, origin(settings.hls_base_url))
            src = Sources(settings.public_url, self._stripe_js_url(app), assets)
            self._built = {**FIXED_HEADERS, "Content-Security-Policy": policy(src)}
        return self._built


def setup(app: web.Application, stripe_js_url: Callable[[web.Application], str]) -> None:
    headers = Headers(stripe_js_url)

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.of(request.app).items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(add)
