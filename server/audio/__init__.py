"""Audio at the edge: `routes` (WHIP/WHEP, trickle ICE, replays, the media
engine's cleanup_ctx) and `live` (live grace, session metrics). `media/`
does the audio itself.
"""

from aiohttp import web

from server.audio import routes


def setup(app: web.Application) -> None:
    routes.setup(app)
