"""The tone runner (`TONES`), opened and closed as a pair: closed before the
store and Redis it uses, it lets go of the jobs under way so that the next
start resumes them."""

from collections.abc import AsyncIterator

from aiohttp import web

from server.tones.runner import ToneRunner

TONES: web.AppKey[ToneRunner] = web.AppKey("tones", ToneRunner)


async def tones_ctx(app: web.Application) -> AsyncIterator[None]:
    app[TONES] = ToneRunner(app)
    try:
        yield
    finally:
        await app[TONES].aclose()
