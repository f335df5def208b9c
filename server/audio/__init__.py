"""Audio at the edge: `routes` (WHIP/WHEP, trickle ICE, replays, the media
engine's cleanup_ctx), `live` (live grace, session metrics) and `tones`
(`tone:play` into the room's mix). `media/` does the audio itself.
"""

from aiohttp import web

from server.audio import routes, tones


def setup(app: web.Application) -> None:
    routes.setup(app)
    tones.setup(app, routes.MEDIA)
