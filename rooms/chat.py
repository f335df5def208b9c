"""Chat: short messages, the last ones kept for late joiners; reactions,
which are not stored. Must not import any framework.
"""

import json
import secrets

from kernel.errors import Invalid
from kernel.events import Event, to_room
from rooms import keys
from rooms.events import CHAT_MESSAGE, REACTION
from rooms.model import ChatMessage
from rooms.store import RoomStore, dumps

MAX_TEXT = 500
KEEP = 100
SNAPSHOT_MESSAGES = 50
REACTIONS = frozenset("👏 ❤️ 🔥 😂 😮 🎉 👍 🙌 💯 🤯".split())


async def send(
    store: RoomStore, room: str, text: str, author: str, name: str, role: str, now: float
) -> tuple[ChatMessage, list[Event]]:
    message = ChatMessage(secrets.token_hex(6), text, author, name, role, now)
    await store.run(
        "rooms/chat",
        [keys.chat(room), keys.log(room), keys.log_head(room)],
        [dumps(message.to_wire()), now, KEEP],
    )
    return message, [to_room(room, CHAT_MESSAGE, {"message": message.to_wire()})]


async def recent(store: RoomStore, room: str, limit: int = SNAPSHOT_MESSAGES) -> list[dict]:
    """Oldest first, as a chat pane shows them."""
    raws = await store.redis.lrange(keys.chat(room), 0, limit - 1)
    return [json.loads(raw) for raw in reversed(raws)]


def reaction(room: str, emoji: object, identity: str, name: str, now: float) -> Event:
    if not isinstance(emoji, str) or emoji not in REACTIONS:
        raise Invalid(f"emoji must be one of {' '.join(sorted(REACTIONS))}")
    payload = {"emoji": emoji, "identity": identity, "name": name, "ts": now}
    return to_room(room, REACTION, payload)
