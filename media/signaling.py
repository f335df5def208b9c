"""The signaling edge over aiortc: turns a WHIP or WHEP offer into a peer
connection and its answer, and wires the peer into the engine.

The one module that builds `RTCPeerConnection`s. Publisher peers hand every
RTP payload to a callback (no jitter buffer, no decode thread); listener
peers send through an `RtpWire` and carry an idle track so aiortc's own
sender loop never runs. SDK errors become `kernel.errors`. Must not import
aiohttp, socketio or `server/`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from kernel.errors import Conflict, Invalid
from media.config import MediaConfig
from media.ice import forget_checks, ice_connections, pre_gather, rtc_configuration
from media.trickle import parse_fragment
from media.wire import RtpWire, header_extensions, quiet_sender_reports

logger = logging.getLogger(__name__)

RtpCallback = Callable[[bytes, int], None]
_MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


class IdleTrack(MediaStreamTrack):
    """A track that never yields: the listener's packets go out through the wire."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._ended.set()
        super().stop()


@dataclass(slots=True)
class Negotiated:
    pc: RTCPeerConnection
    answer_sdp: str
    wire: RtpWire | None = None


def _opus_only(transceiver: RTCRtpTransceiver) -> None:
    caps = RTCRtpSender.getCapabilities("audio")
    opus = [c for c in caps.codecs if c.mimeType.lower() == "audio/opus"]
    transceiver.setCodecPreferences(opus)


class UnsupportedOffer(Invalid):
    """A readable offer we cannot serve (no Opus at 48 kHz): HTTP 422."""


_UNREADABLE = (ValueError, KeyError, IndexError, AttributeError, AssertionError, StopIteration)
_DIGESTS = ("sha-256", "sha-384", "sha-512")  # the ones aiortc's DTLS checks


def check_offer(offer_sdp: str) -> None:
    """Refuse, before any peer exists, an offer aiortc would accept and then
    fail on in a background task (no fingerprint: an AssertionError in its
    connect task) or answer with a codec we never send (no Opus)."""
    try:
        description = SessionDescription.parse(offer_sdp)
    except _UNREADABLE as exc:
        raise Invalid("the body is not a readable SDP offer") from exc
    audio = next((m for m in description.media if m.kind == "audio"), None)
    if audio is None or audio.port == 0:
        raise Invalid("the offer has no audio section")
    fingerprints = audio.dtls.fingerprints if audio.dtls else []
    if not any(f.algorithm.lower() in _DIGESTS for f in fingerprints):
        raise Invalid("the offer has no DTLS fingerprint (sha-256, sha-384 or sha-512)")
    if audio.ice is None or not audio.ice.usernameFragment or not audio.ice.password:
        raise Invalid("the offer has no ICE credentials (ice-ufrag, ice-pwd)")
    if not any(_is_opus(codec) for codec in audio.rtp.codecs):
        raise UnsupportedOffer("the offer's audio has no Opus at 48 kHz, the only codec served")


def _is_opus(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower() == "audio/opus" and codec.clockRate == 48000


class DtlsCertificate:
    """One DTLS certificate for every peer of the process, made again daily.

    aiortc makes a new ECDSA key and self-signed certificate for each peer
    connection: ~2.4 ms of the loop's ~14 ms per answer, paid again by every
    listener of a join rush. Presenting one certificate to many peers is
    what browsers do too (one per origin); aiortc's are valid for 30 days.
    """

    RENEW_AFTER = datetime.timedelta(days=1)

    def __init__(self) -> None:
        self._certificate: RTCCertificate | None = None
        self._made = datetime.datetime.min.replace(tzinfo=datetime.UTC)

    def current(self) -> RTCCertificate:
        now = datetime.datetime.now(datetime.UTC)
        if self._certificate is None or now - self._made > self.RENEW_AFTER:
            self._certificate, self._made = RTCCertificate.generateCertificate(), now
        return self._certificate


def _new_peer(config: MediaConfig, certificate: RTCCertificate | None) -> RTCPeerConnection:
    """A peer connection presenting `certificate` (made by aiortc if None)."""
    if certificate is None:
        return RTCPeerConnection(rtc_configuration(config))
    made = RTCCertificate.__dict__["generateCertificate"]
    RTCCertificate.generateCertificate = classmethod(lambda cls: certificate)  # type: ignore[method-assign,assignment]
    try:  # synchronous: nothing else builds a peer meanwhile
        return RTCPeerConnection(rtc_configuration(config))
    finally:
        RTCCertificate.generateCertificate = made  # type: ignore[method-assign]


async def _accept_offer(
    config: MediaConfig, offer_sdp: str, certificate: RTCCertificate | None
) -> tuple[RTCPeerConnection, Any]:
    check_offer(offer_sdp)
    pc = _new_peer(config, certificate)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    except (*_UNREADABLE, InvalidAccessError, InvalidStateError, OperationError) as exc:
        await close_peer(pc)
        raise UnsupportedOffer(f"unusable SDP offer: {exc}") from exc
    audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
    if not audio:
        await close_peer(pc)
        raise Invalid("the offer has no audio section")
    return pc, audio[0]


async def _answer(pc: RTCPeerConnection, config: MediaConfig) -> str:
    await pre_gather(pc, config)
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
    return str(pc.localDescription.sdp)


async def answer_publisher(
    config: MediaConfig,
    offer_sdp: str,
    on_rtp: RtpCallback,
    certificate: RTCCertificate | None = None,
) -> Negotiated:
    """WHIP: receive the offerer's audio; every payload goes to `on_rtp`."""
    pc, transceiver = await _accept_offer(config, offer_sdp, certificate)
    try:
        transceiver.direction = "recvonly"
        _opus_only(transceiver)
        _tap_receiver(transceiver.receiver, on_rtp)
        return Negotiated(pc, await _answer(pc, config))
    except BaseException:
        await close_peer(pc)
        raise


async def answer_listener(
    config: MediaConfig, offer_sdp: str, certificate: RTCCertificate | None = None
) -> Negotiated:
    """WHEP: send the room's packets to the offerer through an `RtpWire`."""
    pc, transceiver = await _accept_offer(config, offer_sdp, certificate)
    try:
        transceiver.direction = "sendonly"
        _opus_only(transceiver)
        transceiver.sender.replaceTrack(IdleTrack())
        quiet_sender_reports(transceiver.sender)
        sdp = await _answer(pc, config)
        return Negotiated(pc, sdp, _wire_for(transceiver, sdp))
    except BaseException:
        await close_peer(pc)
        raise


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close a peer and drop the event handlers that tie it to its transports.

    aiortc's objects hold each other through pyee handlers (bound methods of
    the peer on its transports), so a closed peer is a reference cycle that
    waits for a full collection; the server raises the collector's
    thresholds (server/cli.py), so without this every closed session kept
    ~80 KB until some far-off gen-2 pass. With the handlers gone, reference
    counting frees the peer, its sockets and its tasks at once (and ICE's
    check pairs, see `forget_checks`).
    """
    connections = ice_connections(pc)
    await pc.close()
    forget_checks(connections)
    emitters: list[Any] = [pc]
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        emitters += [transceiver.sender, transceiver.receiver, dtls]
        if dtls is not None:
            emitters += [dtls.transport, dtls.transport.iceGatherer]
    for emitter in emitters:
        remove = getattr(emitter, "remove_all_listeners", None)
        if remove is not None:
            remove()


async def add_remote_candidates(pc: RTCPeerConnection, fragment_text: str) -> int:
    """Trickle ICE: the fragment's candidates join the peer's ICE; returns
    how many. `IceRestart` if it carries other credentials than the offer."""
    remote = pc.remoteDescription
    if remote is None:
        raise Invalid("the session has no offer yet")
    media = SessionDescription.parse(remote.sdp).media
    ice = media[0].ice if media else None
    mids = [t.mid for t in pc.getTransceivers() if t.mid is not None]
    fragment = parse_fragment(fragment_text, mids[0] if mids else None)
    fragment.check_credentials(ice.usernameFragment if ice else None, ice.password if ice else None)
    try:
        for candidate in fragment.candidates:
            await pc.addIceCandidate(candidate)
        if fragment.end_of_candidates:
            await pc.addIceCandidate(None)
    except ValueError as exc:  # aioice: a candidate after end-of-candidates
        raise Conflict(str(exc)) from exc
    return len(fragment.candidates)


def _wire_for(transceiver: RTCRtpTransceiver, answer_sdp: str) -> RtpWire:
    media = SessionDescription.parse(answer_sdp).media
    section = next(m for m in media if m.kind == "audio" and m.rtp.muxId == transceiver.mid)
    payload_type = section.rtp.codecs[0].payloadType
    if payload_type is None:
        raise Invalid("no payload type negotiated")
    mid_id = next((h.id for h in section.rtp.headerExtensions if h.uri == _MID_URI), None)
    sender = transceiver.sender
    return RtpWire(
        sender.transport,
        sender._ssrc,
        payload_type,
        header_extensions(mid_id, transceiver.mid),
    )


def _tap_receiver(receiver: RTCRtpReceiver, on_rtp: RtpCallback) -> None:
    """Take the receiver's RTP before its jitter buffer and decoder thread."""

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_rtp(packet.payload, packet.timestamp)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]
