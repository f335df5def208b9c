"""Where audio files live: content-addressed (the key holds the sha256),
immutable, written once. The one wrapper of the file store.

    storage = LocalStorage(root)            # file://DIR, the embedded default
    await storage.put_file(src, key, content_type)
    await storage.exists(key)
    storage.local_path(key)                 # a Path (local), or None (S3)
    await storage.presign(key, ttl_s, filename)  # an S3 presigned GET, or None (local:
                                            # the server signs its own link)

Keys look like `tones/<sha256>.<ext>` (bought files, private) and
`previews/<sha256>.<ext>` (public). The local directory serves one node
only; several nodes need S3. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Protocol

from kernel.errors import Invalid

# format -> (file extension, content type, devices it is for). `bundle` is the zip.
FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "m4r": ("m4r", "audio/mp4", ("iphone",)),
    "m4a": ("m4a", "audio/mp4", ("iphone", "android", "other")),
    "mp3": ("mp3", "audio/mpeg", ("android", "other")),
    "opus": ("opus", "audio/ogg", ("android",)),
    "3gp": ("3gp", "audio/3gpp", ("feature",)),
    "bundle": ("zip", "application/zip", ("iphone", "android", "other", "feature")),
}
PREVIEW_EXT, PREVIEW_TYPE = "mp3", "audio/mpeg"


def tone_key(sha256: str, fmt: str) -> str:
    """Where a bought file lives (private: only signed links reach it)."""
    return f"tones/{sha256}.{FORMATS[fmt][0]}"


def preview_key(sha256: str) -> str:
    """Where a preview lives (public, cacheable forever: the name is its hash)."""
    return f"previews/{sha256}.{PREVIEW_EXT}"


class Storage(Protocol):
    async def put_file(self, src: Path, key: str, content_type: str) -> None: ...
    async def exists(self, key: str) -> bool: ...
    def local_path(self, key: str) -> Path | None: ...
    async def presign(self, key: str, ttl_s: int, filename: str) -> str | None: ...
    async def aclose(self) -> None: ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise Invalid(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """A directory: files are written to a temporary name and renamed, so a
    reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, src: Path, key: str, content_type: str) -> None:
        dest = self.local_path(key)
        if dest.exists():
            return  # content-addressed: the same key holds the same bytes

        def copy() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)

        await asyncio.to_thread(copy)

    async def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    async def presign(self, key: str, ttl_s: int, filename: str) -> str | None:
        return None

    async def aclose(self) -> None:
        return None
