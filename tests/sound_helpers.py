"""Sound files made with PyAV for the tone tests: a sine of a given pitch
and length in WAV, FLAC, MP3, Ogg (Opus) or M4A (AAC)."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np

# extension -> (container format, codec, sample format)
FORMATS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "s16p"),
    "ogg": ("ogg", "libopus", "s16"),
    "m4a": ("ipod", "aac", "fltp"),
}


def make_sound(
    path: Path, freq: float = 660.0, seconds: float = 2.0, rate: int = 48000, amp: float = 0.5
) -> Path:
    """A mono sine tone at `path`; the container follows its extension."""
    fmt, codec, sample_fmt = FORMATS[path.suffix.lstrip(".")]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.audio.stream.AudioStream)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = sample_fmt
        total = int(seconds * rate)
        chunk = 1024 if codec == "aac" else 960
        for start in range(0, total, chunk):
            n = np.arange(start, min(start + chunk, total))
            pcm = (np.sin(2 * np.pi * freq * n / rate) * amp * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            frame.time_base = fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
