"""The file store (`app[STORAGE]`), opened and closed as a pair: a local
directory under the data dir by default, S3 when `DROPROOM_STORAGE_URL`
says `s3://BUCKET/PREFIX`. Opening S3 does not reach it (a store that is
down answers 503 per request, never a failed start). Beside it, the minter
of download links (`app[DOWNLOADS]`, which the shop's receipts use too) and
the buyers' library (`LIBRARY`) and the small files kept in memory
(`SMALL_FILES`, server.files.serve)."""

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from commerce.downloads import Downloads
from commerce.library import Library
from commerce.storage import FORMATS, open_storage
from server.appkeys import DOWNLOADS, REDIS, SCHEDULER, SETTINGS, STORAGE
from server.files.serve import Served, SmallFiles
from server.metrics import METRICS

LIBRARY: web.AppKey[Library] = web.AppKey("library", Library)
SMALL_FILES: web.AppKey[SmallFiles] = web.AppKey("small_files", SmallFiles)
# format -> what a served download tells the metrics (labels resolved once)
SERVED: web.AppKey[dict[str, Served]] = web.AppKey("served", dict)


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    storage = open_storage(settings.storage_url, settings.data_dir)
    await storage.open()
    app[STORAGE] = storage
    app[DOWNLOADS] = _downloads(app)
    app[LIBRARY] = Library(app[REDIS], app[DOWNLOADS])
    app[SMALL_FILES] = SmallFiles()
    app[SERVED] = {fmt: _served(app, fmt) for fmt in FORMATS}
    try:
        yield
    finally:
        await storage.aclose()


def _served(app: web.Application, fmt: str) -> Served:
    count = app[METRICS].downloads.labels(fmt)
    took = app[METRICS].download_seconds.labels(fmt)

    def served(seconds: float) -> None:
        count.inc()
        took.observe(seconds)

    return served


def _downloads(app: web.Application) -> Downloads:
    settings, metrics = app[SETTINGS], app[METRICS]

    def issued(links: list[dict[str, Any]]) -> None:
        for link in links:
            metrics.download_links.labels(link["format"]).inc()

    return Downloads(
        app[REDIS],
        app[STORAGE],
        settings.secret,
        settings.public_url,
        settings.download_ttl_s,
        lambda: app[SCHEDULER].clock(),  # followed when a test sets the clock
        on_issued=issued,
        on_delivered=metrics.delivery_seconds.observe,
    )
