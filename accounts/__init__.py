"""People: buyer and creator accounts, sign-in codes, the mail they get and
the outbox that delivers it. Rules and Redis stores only: must not import
aiohttp, socketio, aiortc or av (server/accounts/ is the edge).
"""
