"""The rooms feature at the edge: `connections` (Socket.IO connect, join,
leave, presence machinery), `handlers` (room Socket.IO events), `routes`
(tokens, rooms, guests, log check), `snapshot` (`room:state`), `coalesce`
(presence and tally broadcasts), `demo` (the demo room and its links),
`episodes` (episodes, calendar.ics, follow).
`setup` wires them into the app.
"""

from aiohttp import web

from server.rooms import connections, episodes, handlers, routes


def setup(app: web.Application) -> None:
    connections.setup(app)
    handlers.setup(app)
    routes.setup(app)
    episodes.setup(app)
