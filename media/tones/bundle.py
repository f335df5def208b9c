"""The bundle: a zip of every variant plus `manifest.json` (title, creator,
tags, loudness, and per file its codec, size, sha256 and the devices it is
for). Deterministic: fixed timestamps and order, so the same files give the
same zip and the same sha256.

The devices table repeats commerce/storage.py's FORMATS (media must not
import commerce); tests/test_tone_pipeline.py checks they agree.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from media.tones.model import ToneFile, ToneMeta

DEVICES: dict[str, tuple[str, ...]] = {
    "m4r": ("iphone",),
    "m4a": ("iphone", "android", "other"),
    "mp3": ("android", "other"),
    "opus": ("android",),
    "3gp": ("feature",),
}
EXTENSIONS = {"opus": "opus", "m4r": "m4r", "m4a": "m4a", "mp3": "mp3", "3gp": "3gp"}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
MANIFEST = "manifest.json"


def slug(title: str) -> str:
    """A clean file name from a title: `Morning Chime!` -> `morning-chime`."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return cleaned[:60].strip("-") or "tone"


def member_name(meta: ToneMeta, fmt: str) -> str:
    return f"{slug(meta.title)}.{EXTENSIONS[fmt]}"


def manifest(
    meta: ToneMeta, duration_s: float, loudness: float, peak: float, files: tuple[ToneFile, ...]
) -> dict[str, object]:
    return {
        "title": meta.title,
        "creator": meta.creator,
        "tags": list(meta.tags),
        "duration_s": duration_s,
        "loudness_lufs": loudness,
        "true_peak_dbtp": peak,
        "files": [
            {
                **f.wire(),
                "name": member_name(meta, f.format),
                "devices": list(DEVICES[f.format]),
                "duration_s": f.duration_s,
                "loudness_lufs": f.loudness_lufs,
                "true_peak_dbtp": f.true_peak_dbtp,
            }
            for f in files
        ],
    }


def write_bundle(
    path: Path, meta: ToneMeta, files: tuple[ToneFile, ...], info: dict[str, object]
) -> None:
    """The zip: the manifest first, then the variants in their order. Stored,
    not deflated: the audio is compressed already."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        _add(zf, MANIFEST, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
        for f in files:
            _add(zf, member_name(meta, f.format), f.path.read_bytes())


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    member = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    member.external_attr = 0o644 << 16
    member.create_system = 3
    zf.writestr(member, data)
