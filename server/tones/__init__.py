"""Tone products at the edge: `upload` (the source sound's route), `runner`
(processing jobs, their progress, leases and restarts), `resources` (the
runner's cleanup_ctx). `media.tones` does the audio work, `commerce.audio`
and `commerce.tone_jobs` hold the records. `tone:play` is in server/audio.
"""

from aiohttp import web

from server.appkeys import SCHEDULER, SETTINGS
from server.tones import resources, upload


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resources.tones_ctx)
    app.router.add_routes(upload.routes)

    async def sweep(now: float) -> None:
        await app[resources.TONES].sweep(now)

    # leases renewed three times per lease; its first run, at start-up,
    # takes up the jobs a previous process left
    app[SCHEDULER].every(app[SETTINGS].tone_lease_s / 3, sweep)
