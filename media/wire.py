"""The lightweight sender path: RTP for one listener, written straight to its
SRTP session and ICE socket, without a task or an encoder per listener.

aiortc negotiates the peer and owns DTLS/SRTP; this module only packs the
shared payload behind a 12-byte header and sends it. Owns every reach into
aiortc's (and pylibsrtp's, and asyncio's) transport internals for sending.
Must not import `server/`.

Per packet and listener (25,000 a second for 500 listeners) the path is
kept to: header and payload written into the wire's own buffer, libsrtp
protecting it in place, one `sendto` on the ICE socket of the nominated
pair. The pair, socket, address and SRTP context are looked up once, when
the peer is first ready, not per packet (issue 15's profile: `writable()`,
`remote_addr`, pylibsrtp's per-call allocations and asyncio's `sendto`
checks were a third of the send).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.utils import random16, random32
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi, lib

from media.packets import SharedPacket

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHII")
# Past this many bytes queued in the socket's transport the listener is slow.
_WRITE_BUFFER_LIMIT = 64 * 1024
_MTU = 1500


class Departures:
    """Opt-in, for benchmarks: how long each packet took from leaving the
    mixer (or arriving to forward: `SharedPacket.sent_at`, the loop's clock,
    `time.monotonic` on asyncio's loop) to leaving on a listener's wire, as a
    1 ms histogram. Off unless `count_departures()` switched it on: a wire
    then pays one global read per packet. `note` runs on the media thread
    and, for outlets written on the loop, on the loop too; a lost increment
    between them would only blur a figure, so it takes no lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit_ms: int = 2000) -> None:
        self._clock = clock
        self.counts = [0] * (limit_ms + 1)  # the last bucket: limit_ms or later

    def note(self, sent_at: float) -> None:
        ms = int((self._clock() - sent_at) * 1000.0)
        counts = self.counts
        counts[min(max(ms, 0), len(counts) - 1)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts)

    def take(self) -> list[int]:
        """The histogram so far, and a fresh one from now on."""
        counts, self.counts = self.counts, [0] * len(self.counts)
        return counts


def percentile_ms(counts: list[int], q: float) -> float:
    """The `q` quantile (0..1) of a `Departures` histogram, in ms (nan if empty)."""
    total = sum(counts)
    if not total:
        return float("nan")
    rank, seen = q * total, 0
    for ms, n in enumerate(counts):
        seen += n
        if seen >= rank and n:
            return float(ms)
    return float(len(counts) - 1)


_departures: Departures | None = None


def count_departures(departures: Departures | None = None) -> Departures | None:
    """Every `RtpWire` of this process notes its packets' departures into
    `departures` from now on (None: stop). Returns the one it replaced."""
    global _departures
    previous, _departures = _departures, departures
    return previous


class Wire(Protocol):
    """Where an outlet writes. The RTP wire below, or a test double."""

    def writable(self) -> bool: ...

    def write(self, packet: SharedPacket) -> None: ...


def quiet_sender_reports(sender: RTCRtpSender) -> None:
    """A listener's aiortc sender sends no RTCP sender reports.

    Its counters never move (its track never yields: the packets go out
    through the `RtpWire`), so the reports said nothing; and they were the
    only other use of the SRTP context the wire protects with from the media
    thread. Call before the sender starts. Keeps `stop()`'s handshake.
    """
    started = sender._RTCRtpSender__rtcp_started  # type: ignore[attr-defined]
    exited = sender._RTCRtpSender__rtcp_exited  # type: ignore[attr-defined]

    async def run_rtcp() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # until stop() cancels it
        except asyncio.CancelledError:
            pass
        exited.set()

    sender._run_rtcp = run_rtcp  # type: ignore[method-assign]


def header_extensions(mid_id: int | None, mid: str | None) -> bytes:
    """The RFC 8285 one-byte-header block carrying only the `mid` (if negotiated)."""
    if mid_id is None or not mid:
        return b""
    value = mid.encode("ascii")
    body = bytes([(mid_id << 4) | (len(value) - 1)]) + value
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


class RtpWire:
    """Sends shared payloads to one peer with its own SSRC, sequence and origin.

    Written from the media thread (`off_loop`): its buffer, sequence and
    libsrtp context are its own, and aiortc's sender reports, the only
    other user of that context, are switched off (`quiet_sender_reports`).
    """

    off_loop = True

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
        self.failed = 0  # packets libsrtp or the socket refused
        # What `_arm` finds once the pair is nominated and SRTP keyed.
        self._transport: Any = None
        self._sock: socket.socket | None = None
        self._addr: tuple[str, int] | None = None
        self._srtp: Any = None
        self._cdata = ffi.new("char[]", _MTU)
        self._view = memoryview(ffi.buffer(self._cdata))
        self._len = ffi.new("int *")
        self._body = _HEADER.size + len(extensions)
        self._view[_HEADER.size : self._body] = extensions

    def _arm(self) -> bool:
        """Look the send path up once: the nominated pair, its socket, SRTP."""
        pair = self._conn._nominated.get(1)
        srtp = self._dtls._tx_srtp
        if pair is None or srtp is None:
            return False
        transport = pair.protocol.transport
        if transport is None:
            return False
        self._transport, self._addr = transport, pair.remote_addr
        self._sock = transport._sock  # asyncio's datagram transport: its socket
        self._srtp = srtp._srtp[0]  # pylibsrtp.Session: its srtp_t
        return True

    def writable(self) -> bool:
        transport = self._transport
        if transport is None:
            return self._arm()
        return bool(transport.get_write_buffer_size() < _WRITE_BUFFER_LIMIT)

    def write(self, packet: SharedPacket) -> None:
        if self._sock is None and not self._arm():
            return
        payload = packet.payload
        end = self._body + len(payload)
        if end > _MTU - SRTP_MAX_TRAILER_LEN:
            self.failed += 1
            return
        view = self._view
        ts = (packet.timestamp + self._origin) & 0xFFFFFFFF
        _HEADER.pack_into(view, 0, self._first, self._pt, self._seq, ts, self._ssrc)
        view[self._body : end] = payload
        self._seq = (self._seq + 1) & 0xFFFF
        length = self._len
        length[0] = end
        if lib.srtp_protect(self._srtp, self._cdata, length):
            self.failed += 1
            return
        try:
            self._sock.sendto(view[: length[0]], self._addr)  # type: ignore[union-attr,arg-type]
        except OSError:  # full (a UDP socket rarely is) or closed with its peer
            self.failed += 1
            return
        self.packets += 1
        if _departures is not None:
            _departures.note(packet.sent_at)
