"""Which Redis channel carries an emit to a Socket.IO room (pure).

Every Socket.IO room of one droproom room (`r:<room>`, `s:<room>`,
`i:<room>|<identity>`, `t:<room>|<invite>`: server/emitter.py,
server/revoked_tokens.py) shares ONE Redis channel, so a process holds one
subscription per room it has clients in, whatever their roles. The room
channel carries the room's hash tag: on a Cluster it lives on the shard that
owns the room's keys.

Channels (the shape in the comment):
"""

# droproom:sio:{room:<room id>}      every emit to a Socket.IO room of that room
ROOM = "droproom:sio:{{room:{}}}"
# droproom:sio:account:<account id>  every connection of one signed-in account
ACCOUNT = "droproom:sio:account:{}"
# droproom:sio:host:<host id>        one process: sid-targeted emits, disconnects, acks
HOST = "droproom:sio:host:{}"
# droproom:sio:all                   broadcasts to everyone, and rooms of no known shape
ALL = "droproom:sio:all"

_ROOM_PREFIXES = ("r:", "s:")  # the rest is the room id
_SCOPED_PREFIXES = ("i:", "t:")  # <room>|<identity or invite id>
_ACCOUNT_PREFIX = "a:"

# A sid carries the host id of the process holding it: `<host id>.<engine.io id>`,
# the host id being 16 lowercase hex digits.
SID_SEPARATOR = "."
HOST_ID_LENGTH = 16
_HEX = frozenset("0123456789abcdef")


def host_channel(host_id: str) -> str:
    return HOST.format(host_id)


def room_of(name: str) -> str | None:
    """The droproom room a Socket.IO room belongs to, if it belongs to one."""
    if name.startswith(_ROOM_PREFIXES):
        return name[2:] or None
    if name.startswith(_SCOPED_PREFIXES):
        room, bar, _ = name[2:].partition("|")
        return room if bar and room else None
    return None


def member_channel(name: str) -> str | None:
    """The channel a process subscribes to while it holds a member of the
    Socket.IO room `name` (None: sid rooms and the connected list need none)."""
    room = room_of(name)
    if room is not None:
        return ROOM.format(room)
    if name.startswith(_ACCOUNT_PREFIX) and len(name) > len(_ACCOUNT_PREFIX):
        return ACCOUNT.format(name[len(_ACCOUNT_PREFIX) :])
    return None


def is_host_id(value: str) -> bool:
    return len(value) == HOST_ID_LENGTH and _HEX.issuperset(value)


def host_of_sid(sid: str) -> str | None:
    host, separator, rest = sid.partition(SID_SEPARATOR)
    return host if separator and rest and is_host_id(host) else None


def publish_channel(name: str | None) -> str:
    """Where an emit to Socket.IO room `name` goes (None: everyone)."""
    if name is None:
        return ALL
    channel = member_channel(name)
    if channel is not None:
        return channel
    host = host_of_sid(name)
    return host_channel(host) if host is not None else ALL
