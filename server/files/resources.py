"""The file store (`app[STORAGE]`), opened and closed as a pair: a local
directory under the data dir by default, S3 when `DROPROOM_STORAGE_URL`
says `s3://BUCKET/PREFIX`. Opening S3 does not reach it (a store that is
down answers 503 per request, never a failed start)."""

from collections.abc import AsyncIterator

from aiohttp import web

from commerce.storage import open_storage
from server.appkeys import SETTINGS, STORAGE


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    storage = open_storage(settings.storage_url, settings.data_dir)
    await storage.open()
    app[STORAGE] = storage
    try:
        yield
    finally:
        await storage.aclose()
