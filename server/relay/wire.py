"""The relay's messages on Redis: the sender's host id (16 ASCII bytes), then
a msgpack map (bytes stay bytes, no base64).

The map has `method` ("emit", "disconnect", "enter_room", "leave_room",
"close_room", "callback") and `host_id` (the sender; for a callback, the
process the ack goes back to), plus the method's fields
(python-socketio's pub/sub message shape). The prefix lets a process drop
what it published itself without decoding it (`sender`).
"""

from typing import Any

import msgpack

Message = dict[str, Any]


HOST_BYTES = 16


def encode(message: Message, sender: str) -> bytes:
    """`sender`: the publishing process (a callback's `host_id` names the
    process it goes to, python-socketio's shape)."""
    host = sender.encode().ljust(HOST_BYTES)[:HOST_BYTES]
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return host + packed


def sender(raw: bytes) -> str:
    """The host id of the process that published `raw` (not decoded)."""
    return raw[:HOST_BYTES].decode("ascii", "replace").rstrip()


def decode(raw: bytes) -> Message | None:
    """The message, or None for anything that is not one of ours."""
    try:
        message = msgpack.unpackb(raw[HOST_BYTES:], raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return None
    return message


def pack_args(data: Any) -> list[Any]:
    """A tuple is several arguments of the event, anything else one
    (python-socketio's rule; msgpack would turn a tuple into a list)."""
    return list(data) if isinstance(data, tuple) else [data]


def unpack_args(args: list[Any]) -> Any:
    return args[0] if len(args) == 1 else tuple(args)
