"""The values of tone processing: limits, the source description, the
window kept, the files made and the result. Plain frozen dataclasses, so
they cross the process boundary of the pool by pickling.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_SOURCE_BYTES = 50 * 1024 * 1024  # the upload size limit
MAX_SOURCE_S = 20 * 60  # the longest source accepted
MAX_KEEP_S = 30.0  # the longest window kept (iPhone ringtones stop at ~30-40 s)
MIN_KEEP_S = 0.1  # the shortest window kept (a blip of a notification)
PREVIEW_S = 15.0  # the longest preview
MIN_RATE, MAX_RATE = 8_000, 384_000  # sample rates outside this are absurd
MAX_CHANNELS = 8
# decoded samples (duration x rate x channels) a source may hold: 20 min of
# 48 kHz stereo. A tiny FLAC of silence at 384 kHz x 8 channels is refused.
MAX_DECODED_SAMPLES = MAX_SOURCE_S * 48_000 * 2

TARGET_LUFS = -16.0
CEILING_DBTP = -1.0
SHORT_S = 3.0  # below this there is no integrated loudness: use the loudest 400 ms


class ToneFailed(Exception):
    """Processing could not finish; `reason` is a sentence a person understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ToneFailed], tuple[str]]:
        return (ToneFailed, (self.reason,))


@dataclass(frozen=True)
class SourceInfo:
    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    container: str


@dataclass(frozen=True)
class Window:
    start_s: float = 0.0
    length_s: float = MAX_KEEP_S

    @property
    def end_s(self) -> float:
        return self.start_s + self.length_s


@dataclass(frozen=True)
class ToneMeta:
    title: str
    creator: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToneFile:
    format: str  # "opus", "m4r", "m4a", "mp3", "3gp", "bundle", "preview"
    codec: str
    container: str
    path: Path
    bytes: int
    sha256: str
    sample_rate: int
    channels: int
    bitrate: int
    duration_s: float
    loudness_lufs: float | None
    true_peak_dbtp: float | None

    def wire(self) -> dict[str, object]:
        """The protocol's variant shape."""
        return {
            "format": self.format,
            "codec": self.codec,
            "container": self.container,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "bitrate": self.bitrate,
        }


@dataclass(frozen=True)
class ToneResult:
    duration_s: float
    loudness_lufs: float
    true_peak_dbtp: float
    variants: tuple[ToneFile, ...]  # opus, m4r, m4a, mp3, 3gp (that order)
    bundle: ToneFile
    preview: ToneFile
    notes: tuple[str, ...] = field(default=())  # what the correction loop did, for logs

    def wire(self) -> dict[str, object]:
        """The measured part of the protocol's product `audio` (the caller adds
        `state`, `progress` and `preview_url`)."""
        return {
            "duration_s": self.duration_s,
            "loudness_lufs": self.loudness_lufs,
            "true_peak_dbtp": self.true_peak_dbtp,
            "variants": [f.wire() for f in self.variants],
            "bundle": {"bytes": self.bundle.bytes, "sha256": self.bundle.sha256},
        }
