"""Tone products: a source sound turned into ringtone files (Opus, AAC as
.m4r and .m4a, MP3, AMR-NB in .3gp), a preview and a zip bundle, all
loudness-normalized; and the process pool that runs this off the event loop.

Must not import aiohttp, socketio or commerce.
"""

from media.tones.model import (
    MAX_KEEP_S,
    MAX_SOURCE_BYTES,
    MAX_SOURCE_S,
    MIN_KEEP_S,
    PREVIEW_S,
    SourceInfo,
    ToneFailed,
    ToneFile,
    ToneMeta,
    ToneResult,
    Window,
)
from media.tones.pipeline import process
from media.tones.pool import TonePool
from media.tones.source import check_window, probe

__all__ = [
    "MAX_KEEP_S",
    "MAX_SOURCE_BYTES",
    "MAX_SOURCE_S",
    "MIN_KEEP_S",
    "PREVIEW_S",
    "SourceInfo",
    "ToneFailed",
    "ToneFile",
    "ToneMeta",
    "TonePool",
    "ToneResult",
    "Window",
    "check_window",
    "probe",
    "process",
]
