"""A tone played into a room's live mix (`tone:play`): a short sound decoded
once to 48 kHz mono PCM, then handed to the mixer 20 ms at a time as one
more voice, heard by every listener through the mix that is encoded once for
all of them.

    pcm = decode_tone(path)        # blocking: run it off the loop
    voice = ToneVoice(product_id, pcm)
    voice.pop_frame()              # the next 20 ms, or None when it is over

Must not import aiohttp, socketio or `server/`.
"""

from __future__ import annotations

import av
import numpy as np

from media.ingest import Pcm
from media.packets import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE

MAX_TONE_S = 30.0  # a preview is at most 15 s; anything longer is cut here
# The tone sits a little under a voice at full scale, so a speaker talking
# over it is not clipped.
TONE_GAIN = 0.8


class ToneUnreadable(Exception):
    """The file is not a sound PyAV can decode."""


def decode_tone(path: str, max_s: float = MAX_TONE_S) -> Pcm:
    """The sound at `path` as float32 mono 48 kHz samples (at most `max_s`)."""
    limit = int(max_s * SAMPLE_RATE)
    parts: list[Pcm] = []
    got = 0
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1).astype(np.float32))
                    got += parts[-1].size
                if got >= limit:
                    break
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32))
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise ToneUnreadable(f"cannot decode {path}: {exc}") from exc
    if not parts:
        raise ToneUnreadable(f"{path} holds no audio")
    return np.concatenate(parts)[:limit] * np.float32(TONE_GAIN)


class ToneVoice:
    """The tone as the mixer's virtual voice: 20 ms frames until it ends."""

    def __init__(self, product_id: str, pcm: Pcm) -> None:
        self.product_id = product_id
        self._pcm = pcm
        self._pos = 0

    @property
    def duration_s(self) -> float:
        frames = -(-self._pcm.size // FRAME_SAMPLES)  # the last one padded
        return frames * FRAME_S

    @property
    def done(self) -> bool:
        return self._pos >= self._pcm.size

    def pop_frame(self) -> Pcm | None:
        if self.done:
            return None
        frame = self._pcm[self._pos : self._pos + FRAME_SAMPLES]
        self._pos += FRAME_SAMPLES
        if frame.size < FRAME_SAMPLES:
            frame = np.pad(frame, (0, FRAME_SAMPLES - frame.size))
        return frame
