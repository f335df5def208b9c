"""People: buyer and creator accounts, sign-in codes, the mail they get and
the outbox that delivers it, creators' outbound webhooks (hook_*.py). Rules
and Redis stores only: must not import aiohttp, socketio, aiortc or av
(server/accounts/ and server/hooks/ are the edge).
"""
