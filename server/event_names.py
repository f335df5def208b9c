"""The names of the Socket.IO events that `server/` itself sends (the
protocol's outgoing names; see docs/protocol.md). Events a domain function
returns carry the name that function chose; the ones below are built or
matched here, so each is written once.

Imports nothing.
"""

from typing import Final

# To one connection
ROOM_STATE: Final = "room:state"  # the whole room, right after connect
SESSION_EXPIRED: Final = "session:expired"  # the token ran out; the socket closes next

# To one identity (all of a person's tabs)
TOKEN_UPDATED: Final = "token:updated"  # a new token after a stage change
CART_UPDATED: Final = "cart:updated"
ORDER_UPDATED: Final = "order:updated"

# To the room, coalesced per flush
POLL_UPDATED: Final = "poll:updated"
PRESENCE_UPDATED: Final = "presence:updated"
SPEAKING_UPDATED: Final = "speaking:updated"
DROP_UPDATED: Final = "drop:updated"  # matched to fold into the stock broadcast
