"""The lightweight sender path: RTP for one listener, written straight to its
SRTP session and ICE socket, without a task or an encoder per listener.

aiortc negotiates the peer and owns DTLS/SRTP; this module only packs the
shared payload behind a 12-byte header and sends it. Owns every reach into
aiortc's transport internals for sending. Must not import `server/`.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Protocol

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.utils import random16, random32

from media.packets import SharedPacket

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHII")
# Past this many bytes queued in the socket's transport the listener is slow.
_WRITE_BUFFER_LIMIT = 64 * 1024


class Wire(Protocol):
    """Where an outlet writes. The RTP wire below, or a test double."""

    def writable(self) -> bool: ...

    def write(self, packet: SharedPacket) -> None: ...


def header_extensions(mid_id: int | None, mid: str | None) -> bytes:
    """The RFC 8285 one-byte-header block carrying only the `mid` (if negotiated)."""
    if mid_id is None or not mid:
        return b""
    value = mid.encode("ascii")
    body = bytes([(mid_id << 4) | (len(value) - 1)]) + value
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


class RtpWire:
    """Sends shared payloads to one peer with its own SSRC, sequence and origin."""

    def __init__(
        self,
        dtls: RTCDtlsTransport,
        ssrc: int,
        payload_type: int,
        extensions: bytes = b"",
    ) -> None:
        self._dtls = dtls
        self._conn: Any = dtls.transport._connection
        self._ssrc = ssrc
        self._pt = payload_type & 0x7F
        self._ext = extensions
        self._first = 0x90 if extensions else 0x80
        self._seq = random16() % 32768
        self._origin = random32()
        self.packets = 0

    def writable(self) -> bool:
        pair = self._conn._nominated.get(1)
        if pair is None or self._dtls._tx_srtp is None:
            return False
        transport = pair.protocol.transport
        return transport is not None and transport.get_write_buffer_size() < _WRITE_BUFFER_LIMIT

    def write(self, packet: SharedPacket) -> None:
        pair = self._conn._nominated.get(1)
        if pair is None:
            return
        ts = (packet.timestamp + self._origin) & 0xFFFFFFFF
        header = _HEADER.pack(self._first, self._pt, self._seq, ts, self._ssrc)
        data = self._dtls._tx_srtp.protect(header + self._ext + packet.payload)
        pair.protocol.transport.sendto(data, pair.remote_addr)
        self._seq = (self._seq + 1) & 0xFFFF
        self.packets += 1
