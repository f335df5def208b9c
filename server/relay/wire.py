"""The relay's messages on Redis: msgpack maps (bytes stay bytes, no base64).

A message is a dict with `method` ("emit", "disconnect", "enter_room",
"leave_room", "close_room", "callback") and `host_id`, the process that sent
it, plus the method's fields (python-socketio's pub/sub message shape).
"""

from typing import Any

import msgpack

Message = dict[str, Any]


def encode(message: Message) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(raw: bytes) -> Message | None:
    """The message, or None for anything that is not one of ours."""
    try:
        message = msgpack.unpackb(raw, raw=False, strict_map_key=False)
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
