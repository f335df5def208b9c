"""Opening a source sound safely: only the demuxers of the formats we take
(an HLS playlist or a concat list would make FFmpeg read other files), only
local files, one decoding thread; `probe` decides from the headers and a
bounded decode whether a sound is acceptable, and `decode_window` reads the
kept window as float samples.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.container
import numpy as np

from kernel.errors import Invalid
from media.tones.model import (
    MAX_CHANNELS,
    MAX_DECODED_SAMPLES,
    MAX_KEEP_S,
    MAX_RATE,
    MAX_SOURCE_BYTES,
    MAX_SOURCE_S,
    MIN_KEEP_S,
    MIN_RATE,
    SourceInfo,
    Window,
)

WORK_RATE = 48_000  # every step between decode and encode runs at this rate
DEMUXERS = "wav,w64,flac,mp3,ogg,mov,mp4,m4a,aiff,matroska,webm,caf"
OPEN_OPTIONS = {"format_whitelist": DEMUXERS, "protocol_whitelist": "file"}
PROBE_DECODE_S = 2.0  # decoded at the start, and near the end, by `probe`
SEEK_FROM_S = 4.0  # windows starting later are reached by a seek


def open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r", options=OPEN_OPTIONS)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise Invalid("this file is not a sound we can read (WAV, FLAC, MP3, Ogg or M4A)") from exc


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise Invalid("this file has no audio in it")
    stream = container.streams.audio[0]
    stream.codec_context.thread_count = 1
    return stream


def _duration_s(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _check_header(rate: int, channels: int, duration_s: float) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise Invalid(f"a sample rate of {rate} Hz is not a real sound's (8 kHz to 384 kHz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise Invalid(f"{channels} channels is too many (at most {MAX_CHANNELS})")
    if duration_s > MAX_SOURCE_S:
        minutes = f"{duration_s / 60:.0f} min"
        raise Invalid(f"the sound lasts {minutes}; at most {MAX_SOURCE_S // 60} min is accepted")
    if duration_s * rate * channels > MAX_DECODED_SAMPLES:
        raise Invalid("the sound decodes to too much audio (length x sample rate x channels)")


def _decode_until(
    container: av.container.InputContainer, stream: av.AudioStream, until_s: float, budget_s: float
) -> tuple[float, float]:
    """Decode until the position `until_s` or `budget_s` seconds of audio,
    whichever comes first: (seconds decoded, position reached). Invalid on
    damage."""
    got, reached = 0.0, 0.0
    try:
        for frame in container.decode(stream):
            if frame.sample_rate != stream.codec_context.sample_rate:
                raise Invalid("the sound changes its sample rate midway")
            length = frame.samples / frame.sample_rate
            got += length
            reached = max(
                reached, (frame.time if frame.time is not None else got - length) + length
            )
            if reached >= until_s or got >= budget_s:
                break
    except av.FFmpegError as exc:
        raise Invalid("the sound is damaged or truncated: it cannot be decoded") from exc
    return got, reached


def probe(path: Path) -> SourceInfo:
    """What the source is, or Invalid with a clear message. Fast: headers, the
    first seconds decoded, and the last second decoded after a seek."""
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise Invalid(f"the file is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB")
    with open_input(path) as container:
        stream = _audio_stream(container)
        ctx = stream.codec_context
        rate, channels = ctx.sample_rate, ctx.layout.nb_channels
        duration = _duration_s(container, stream)
        _check_header(rate, channels, duration or 0.0)
        head, _ = _decode_until(container, stream, PROBE_DECODE_S, PROBE_DECODE_S)
        if head <= 0:
            raise Invalid("the sound is empty or damaged: no audio could be decoded")
        if duration is None:
            duration = head
        elif duration > head + 0.05:
            _check_tail(container, stream, duration)
        _check_header(rate, channels, duration)
        return SourceInfo(
            duration_s=round(duration, 3),
            sample_rate=rate,
            channels=channels,
            codec=ctx.name,
            container=container.format.name,
        )


def _check_tail(
    container: av.container.InputContainer, stream: av.AudioStream, duration: float
) -> None:
    """A truncated file announces more than it holds: seek to its last
    second and decode; the audio must be there."""
    at = max(0.0, duration - 1.0)
    try:
        container.seek(int(at / (stream.time_base or 1)), stream=stream, any_frame=False)
    except av.FFmpegError as exc:
        raise Invalid("the sound is truncated or damaged: its end cannot be reached") from exc
    _, reached = _decode_until(container, stream, at + 0.2, PROBE_DECODE_S)
    if reached < at:
        raise Invalid(
            f"the sound is truncated: it ends at {reached:.1f} s, not at {duration:.1f} s "
            "as its header says"
        )


def check_window(info: SourceInfo, window: Window) -> Window:
    """The window clamped to MAX_KEEP_S and to the end of the sound; Invalid
    when it starts outside the sound or keeps less than MIN_KEEP_S."""
    if not (np.isfinite(window.start_s) and np.isfinite(window.length_s)):
        raise Invalid("the window must be numbers of seconds")
    if window.length_s < MIN_KEEP_S:
        raise Invalid(f"the window must keep at least {MIN_KEEP_S:g} s")
    if window.start_s < 0 or window.start_s > info.duration_s - MIN_KEEP_S:
        span = f"0 to {info.duration_s:g} s"
        raise Invalid(f"the window starts at {window.start_s:g} s, outside the sound ({span})")
    length = min(window.length_s, MAX_KEEP_S, info.duration_s - window.start_s)
    return Window(start_s=window.start_s, length_s=round(length, 6))


def work_layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def decode_window(path: Path, window: Window) -> np.ndarray:
    """The window as float32 samples, shape (channels, n), at WORK_RATE; mono
    stays mono, more than two channels are mixed down to stereo. Times count
    from the stream's first sample (an MP3's encoder delay is not sound)."""
    with open_input(path) as container:
        stream = _audio_stream(container)
        layout = work_layout(stream.codec_context.layout.nb_channels)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=WORK_RATE)
        origin = _start_s(stream)
        _seek_before(container, stream, origin + window.start_s)
        chunks: list[np.ndarray] = []
        first: float | None = None  # the first kept frame's time, from the origin
        pos = kept = decoded = 0.0
        for frame in container.decode(stream):
            decoded += frame.samples * len(frame.layout.channels)
            if decoded > MAX_DECODED_SAMPLES:  # the headers lied: stop a decompression bomb
                raise Invalid("the sound decodes to more audio than its headers say")
            pos = frame.time - origin if frame.time is not None else pos
            length = frame.samples / frame.sample_rate
            if pos + length < window.start_s - 0.1:
                pos += length
                continue
            first = pos if first is None else first
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
            pos, kept = pos + length, kept + length
            if first + kept >= window.end_s:
                break
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    if not chunks or first is None:
        raise Invalid("the window holds no audio")
    samples = np.concatenate(chunks, axis=1)
    skip = max(0, round((window.start_s - first) * WORK_RATE))
    want = round(window.length_s * WORK_RATE)
    return np.ascontiguousarray(samples[:, skip : skip + want], dtype=np.float32)


def _start_s(stream: av.AudioStream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _seek_before(
    container: av.container.InputContainer, stream: av.AudioStream, start_s: float
) -> None:
    """Jump near a late window instead of decoding everything before it; the
    frames' own timestamps then place the window exactly."""
    if start_s < SEEK_FROM_S:
        return
    try:
        target = (start_s - SEEK_FROM_S / 2) / (stream.time_base or 1)
        container.seek(int(target), stream=stream, backward=True)
    except av.FFmpegError:
        container.seek(0, stream=stream)  # decode from the start instead


__all__ = ["MAX_KEEP_S", "check_window", "decode_window", "open_input", "probe"]
