"""Audio at the edge: `routes` (WHIP/WHEP, trickle ICE, the media engine's
cleanup_ctx), `replays` (recordings with their shoppable moments), `live`
(live grace, session metrics), `tones` (`tone:play` into the room's mix) and
`hls` (the room's mix as HLS, `/hls/{room}/index.m3u8`).
`media/` does the audio itself.
"""

from aiohttp import web

from server.audio import hls, replays, routes, tones


def setup(app: web.Application) -> None:
    routes.setup(app)
    replays.setup(app)
    tones.setup(app, routes.MEDIA)
    hls.setup(app)
