"""The names of the room domain's outgoing events, each defined once.

`rooms/` builds its events with these, and `server/` emits the ones it
builds itself (the snapshot, coalesced tallies and presence, the speaker
token, the speaking levels, an expired session) with these too. The payloads
are in docs/protocol.md. Must not import any framework.
"""

from typing import Final

ROOM_STATE: Final = "room:state"  # the snapshot, to one connection on connect
ROOM_UPDATED: Final = "room:updated"
STAGE_UPDATED: Final = "stage:updated"
HAND_UPDATED: Final = "hand:updated"
PRESENCE_UPDATED: Final = "presence:updated"
POLL_UPDATED: Final = "poll:updated"
QUESTION_UPDATED: Final = "question:updated"
CHAT_MESSAGE: Final = "chat:message"
REACTION: Final = "reaction"
TOKEN_UPDATED: Final = "token:updated"  # a speaker token, to the invitee
SPEAKING_UPDATED: Final = "speaking:updated"
SESSION_EXPIRED: Final = "session:expired"
STATS_UPDATED: Final = "stats:updated"  # to the staff: the live event numbers (every 2 s)

ALL: Final = (
    ROOM_STATE,
    ROOM_UPDATED,
    STAGE_UPDATED,
    HAND_UPDATED,
    PRESENCE_UPDATED,
    POLL_UPDATED,
    QUESTION_UPDATED,
    CHAT_MESSAGE,
    REACTION,
    TOKEN_UPDATED,
    SPEAKING_UPDATED,
    SESSION_EXPIRED,
    STATS_UPDATED,
)
