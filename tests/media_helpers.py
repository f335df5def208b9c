"""Real aiortc peers for the media tests and the benchmark: a publisher that
sends a sine tone, a listener that records what it hears and when packets
arrive, and a spectrum check. Loopback only: every peer offers 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import fractions
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from media.certificate import CertPair
from media.config import MediaConfig
from media.ice import pre_gather, rtc_configuration

LOOPBACK = MediaConfig(data_dir=Path("/nonexistent"), ice_hosts=("127.0.0.1",))
RATE = 48000
# (offer sdp) -> answer sdp
Exchange = Callable[[str], Awaitable[str]]


class ToneTrack(MediaStreamTrack):
    """A sine tone at real-time pace, 20 ms frames (or silence when `silent`)."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self.silent = False
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        n = np.arange(self._pts, self._pts + 960)
        amp = 0.0 if self.silent else self.amplitude
        pcm = (np.sin(2 * np.pi * self.freq * n / RATE) * amp * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += 960
        return frame


async def _offer(pc: RTCPeerConnection, exchange: Exchange) -> None:
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await exchange(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def abandoned_offer() -> str:
    """A listener's offer whose peer is closed at once: ICE never completes."""
    pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
    pc.addTransceiver("audio", direction="recvonly")
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


async def wait_connected(pc: RTCPeerConnection, limit_s: float = 10) -> None:
    async with asyncio.timeout(limit_s):
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise ConnectionError(pc.connectionState)
            await asyncio.sleep(0.02)


@dataclass
class TonePublisher:
    pc: RTCPeerConnection
    track: ToneTrack

    @classmethod
    async def start(cls, freq: float, exchange: Exchange) -> TonePublisher:
        pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
        track = ToneTrack(freq)
        pc.addTransceiver(track, direction="sendonly")
        await _offer(pc, exchange)
        return cls(pc, track)

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class AudioListener:
    """Records decoded audio and the arrival time of every RTP packet."""

    pc: RTCPeerConnection
    arrivals: list[float] = field(default_factory=list)
    frames: list[tuple[float, npt.NDArray[np.float32]]] = field(default_factory=list)
    decode: bool = True
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, exchange: Exchange, decode: bool = True) -> AudioListener:
        pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
        transceiver = pc.addTransceiver("audio", direction="recvonly")
        self = cls(pc, decode=decode)
        self._tap(transceiver.receiver)
        pc.on("track", self._on_track)
        await _offer(pc, exchange)
        return self

    def _tap(self, receiver: object) -> None:
        original = receiver._handle_rtp_packet  # type: ignore[attr-defined]
        loop_time = asyncio.get_running_loop().time

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.arrivals.append(loop_time())
            if self.decode:
                await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[attr-defined]

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        loop_time = asyncio.get_running_loop().time
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                pcm = frame.to_ndarray().astype(np.float32).reshape(-1) / 32768.0
                if frame.layout.nb_channels == 2:
                    pcm = pcm.reshape(-1, 2).mean(axis=1)
                self.frames.append((loop_time(), pcm))
        except MediaStreamError:
            pass

    def audio_since(self, t0: float) -> npt.NDArray[np.float32]:
        parts = [pcm for t, pcm in self.frames if t >= t0]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def max_gap(self, t0: float, t1: float) -> float:
        times = [t for t in self.arrivals if t0 <= t <= t1]
        if len(times) < 2:
            return float("inf")
        return float(np.max(np.diff(times)))

    def rate(self, t0: float, t1: float) -> float:
        return sum(1 for t in self.arrivals if t0 <= t <= t1) / (t1 - t0)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass


def band_energy(pcm: npt.NDArray[np.float32], freq: float, width: float = 15.0) -> float:
    """Share of the signal's energy within +-width Hz of freq."""
    if pcm.size < RATE // 10:
        return 0.0
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size))) ** 2
    freqs = np.fft.rfftfreq(pcm.size, 1 / RATE)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[(freqs > freq - width) & (freqs < freq + width)].sum()) / total


def peak_hz(pcm: npt.NDArray[np.float32]) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    freqs = np.fft.rfftfreq(pcm.size, 1 / RATE)
    return float(freqs[int(np.argmax(spectrum))])


def ffmpeg_whip_publish(
    url: str,
    token: str,
    cert: CertPair,
    freq: float,
    seconds: float,
    stop: threading.Event,
) -> int:
    """FFmpeg's own WHIP muxer (inside PyAV) publishing a stereo tone in real
    time; blocking, run it in a thread. Returns the number of packets sent."""
    options = {
        "authorization": token,
        "cert_file": str(cert.cert_file),
        "key_file": str(cert.key_file),
        "handshake_timeout": "10000",
        "pkt_size": "1200",
    }
    container = av.open(url, mode="w", format="whip", options=options)
    stream = container.add_stream("libopus", rate=RATE)
    stream.codec_context.layout = "stereo"  # FFmpeg's WHIP refuses mono
    stream.codec_context.bit_rate = 64000
    container.start_encoding()  # the WHIP exchange, ICE and DTLS happen here
    sent, pts, start = 0, 0, time.monotonic()
    try:
        while pts < seconds * RATE and not stop.is_set():
            n = np.arange(pts, pts + 960)
            tone = (np.sin(2 * np.pi * freq * n / RATE) * 0.3 * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate, frame.pts = RATE, pts
            for packet in stream.encode(frame):
                container.mux(packet)
                sent += 1
            pts += 960
            wait = start + pts / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    finally:
        container.close()
    return sent


def _main(argv: list[str]) -> int:
    """`python -m tests.media_helpers whip URL TOKEN CERT KEY FREQ SECONDS`:
    FFmpeg's muxer holds the GIL while it negotiates, so tests run it in a
    child process, never in the server's process."""
    _, url, token, cert_file, key_file, freq, seconds = argv
    stop = threading.Event()
    pair = CertPair(Path(cert_file), Path(key_file))
    sent = ffmpeg_whip_publish(url, token, pair, float(freq), float(seconds), stop)
    print(sent, flush=True)
    return 0


if __name__ == "__main__":
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(_main(sys.argv[1:]))
