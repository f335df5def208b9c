"""Socket.IO packets from clients, read defensively: a packet that cannot be
read (an integer of more than 100 digits, which engine.io's JSON refuses;
nesting past the recursion limit or deeper than MAX_DEPTH; a packet type
clients do not send) becomes the event UNREADABLE, which the dispatcher
answers `invalid`, instead of a traceback per packet in engine.io's log.
"""

import logging
from typing import Any

import socketio

logger = logging.getLogger(__name__)


# An event whose packet could not be read is delivered under this name (a
# client cannot collide with it by accident: it starts with a NUL), so the
# dispatcher answers its ack `invalid` instead of engine.io logging a traceback.
UNREADABLE = "\x00unreadable"
# Deeper payloads are refused: no event of ours nests more than a few levels.
MAX_DEPTH = 32


def _depth_exceeds(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def _too_deep(encoded: str, data: object) -> bool:
    # Counting brackets runs at C speed; the walk only for payloads that may nest.
    if encoded.count("[") + encoded.count("{") <= MAX_DEPTH:
        return False
    return _depth_exceeds(data, MAX_DEPTH + 1)  # +1: the event's [name, payload]


_FROM_CLIENTS = frozenset(
    (
        socketio.packet.CONNECT,
        socketio.packet.DISCONNECT,
        socketio.packet.EVENT,
        socketio.packet.ACK,
        socketio.packet.BINARY_EVENT,
        socketio.packet.BINARY_ACK,
    )
)


class GuardedPacket(socketio.packet.Packet):
    """Socket.IO's packet, whose decoding refuses instead of raising: a
    100-digit integer (engine.io's JSON refuses it), nesting deep enough to
    exhaust the recursion limit, or deeper than MAX_DEPTH."""

    def decode(self, encoded_packet: Any) -> int:
        try:
            count = int(super().decode(encoded_packet))
        except (ValueError, RecursionError) as exc:
            return self._unreadable(str(exc) or type(exc).__name__)
        kind: Any = getattr(self, "packet_type", None)
        if kind not in _FROM_CLIENTS:
            self.packet_type = socketio.packet.EVENT
            return self._unreadable("a packet type clients do not send")
        data: Any = getattr(self, "data", None)
        if isinstance(encoded_packet, str) and _too_deep(encoded_packet, data):
            return self._unreadable(f"nested deeper than {MAX_DEPTH} levels")
        return count

    def _unreadable(self, reason: str) -> int:
        logger.info("refused an unreadable Socket.IO packet: %s", reason[:100])
        kind: Any = getattr(self, "packet_type", None)
        data: Any = None
        if kind in (socketio.packet.EVENT, socketio.packet.BINARY_EVENT):
            self.packet_type = socketio.packet.EVENT
            data = [UNREADABLE, reason[:100]]
        self.data = data
        return 0


def read_defensively(sio: socketio.AsyncServer) -> None:
    sio.packet_class = GuardedPacket
