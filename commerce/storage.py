"""Where audio files and images live: content-addressed (the key holds the sha256),
immutable, written once. The one wrapper of the file store.

    storage = open_storage(url, data_dir)   # None or file://DIR: LocalStorage;
                                            # s3://BUCKET/PREFIX: S3Storage
    await storage.open()                    # (the app does this in a cleanup_ctx)
    await storage.put_file(src, key, content_type)
    await storage.exists(key)
    await storage.read(key)                 # the bytes (previews served through)
    storage.local_path(key)                 # a Path (local), or None (S3)
    await storage.presign(key, ttl_s, filename)  # an S3 presigned GET, or None (local:
                                            # the server signs its own link)
    await storage.delete(key)               # gone (no error when it was not there)
    storage.public_url(key)                 # S3: the object's plain URL; local: None

Keys look like `tones/<sha256>.<ext>` (bought files, private),
`previews/<sha256>.<ext>` and `images/<sha256>.webp` (public), and the live
HLS segments `hls/<room>/<random session>/<n>.ts` (public, deleted as the
playlist's window slides; media.hls, server.audio.hls). The local directory serves one node
only; several nodes need S3. Must not import aiohttp, socketio or stripe.

S3 (aiobotocore): credentials come from the standard AWS variables
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
`AWS_REGION`, `AWS_ENDPOINT_URL` for an S3-compatible store) and are never
held by this module, logged, or put in an error message. An unreachable
store raises `Unavailable` (503); botocore's own debug logging, which
prints signed requests, is kept at WARNING unless the operator set a level.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from kernel.errors import Invalid, NotFound, Unavailable

logger = logging.getLogger(__name__)

STORAGE_DOWN = "the file store cannot be reached; retry shortly"

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


IMAGE_EXT, IMAGE_TYPE = "webp", "image/webp"


def image_key(sha256: str) -> str:
    """Where a product image lives (public, cacheable forever: the name is
    the hash of the re-encoded WebP, never of the upload)."""
    return f"images/{sha256}.{IMAGE_EXT}"


class Storage(Protocol):
    async def open(self) -> None: ...
    async def put_file(
        self, src: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None: ...
    async def delete(self, key: str) -> None: ...
    def public_url(self, key: str) -> str | None: ...
    async def exists(self, key: str) -> bool: ...
    async def read(self, key: str) -> bytes: ...
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

    async def open(self) -> None:
        await asyncio.to_thread(self.root.mkdir, mode=0o700, parents=True, exist_ok=True)

    def local_path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(
        self, src: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None:
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

    async def read(self, key: str) -> bytes:
        path = self.local_path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no such file: {key}") from None

    async def presign(self, key: str, ttl_s: int, filename: str) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.local_path(key).unlink, missing_ok=True)

    def public_url(self, key: str) -> str | None:
        return None  # the server serves its own files

    async def aclose(self) -> None:
        return None


@functools.lru_cache(maxsize=4096)
def attachment(filename: str) -> str:
    """`Content-Disposition: attachment` with an ASCII fallback name and the
    exact name as RFC 6266 `filename*` (UTF-8, percent-encoded)."""
    ascii_name = (
        "".join(
            c if c.isascii() and (c.isalnum() or c in " ._-()[]+,") else "_" for c in filename
        ).strip()
        or "download"
    )
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3Storage:
    """An S3 bucket (or any S3-compatible store) under a key prefix. Downloads
    never pass through Python: `presign` answers a presigned GET that names
    the file (`ResponseContentDisposition`) and lives as long as the link."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if not bucket:
            raise Invalid("an s3:// storage URL needs a bucket: s3://BUCKET/PREFIX")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region or "us-east-1"
        self.timeout_s = timeout_s
        self._stack = AsyncExitStack()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def open(self) -> None:
        # botocore's import and its JSON models take most of a second: off the loop.
        get_session, aio_config = await asyncio.to_thread(_aiobotocore)
        for name in ("botocore", "aiobotocore"):
            quiet = logging.getLogger(name)
            if quiet.level == logging.NOTSET:
                quiet.setLevel(logging.WARNING)  # its DEBUG lines print signed requests
        config = aio_config(
            connect_timeout=self.timeout_s,
            read_timeout=self.timeout_s,
            retries={"max_attempts": 2, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
        )
        session = get_session()
        await asyncio.to_thread(_warm, session)
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            raise Unavailable("the file store is not open")
        return self._client

    def local_path(self, key: str) -> Path | None:
        return None

    async def put_file(
        self, src: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None:
        if await self.exists(key):
            return  # content-addressed: the same key holds the same bytes
        body = await asyncio.to_thread(src.read_bytes)
        extra = {"CacheControl": cache_control} if cache_control else {}
        async with _reaching_s3(key, reading=False):
            await self.client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(key),
                Body=body,
                ContentType=content_type,
                **extra,
            )

    async def delete(self, key: str) -> None:
        async with _reaching_s3(key, reading=False):
            await self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def public_url(self, key: str) -> str:
        """The object's unsigned URL (readable when the bucket or a CDN in
        front of it lets the public read that prefix)."""
        path = quote(self.object_key(key))
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{path}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{path}"

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            async with _reaching_s3(key):
                await self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    async def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            async with _reaching_s3(key):
                answer = await self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
                async with answer["Body"] as stream:
                    return bytes(await stream.read())
        except ClientError as exc:
            if _status(exc) == 404:
                raise NotFound(f"no such file: {key}") from None
            raise

    async def presign(self, key: str, ttl_s: int, filename: str) -> str | None:
        """A presigned GET (signed locally, no round trip), at most `ttl_s` long."""
        url: str = await self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentDisposition": attachment(filename),
            },
            ExpiresIn=max(1, int(ttl_s)),
        )
        return url

    async def aclose(self) -> None:
        self._client = None
        await self._stack.aclose()


def _aiobotocore() -> tuple[Any, Any]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    return get_session, AioConfig


def _warm(session: Any) -> None:
    """Loads (and caches in the session) the models an S3 client reads."""
    loader = session.get_component("data_loader")
    loader.load_service_model("s3", "service-2")
    loader.load_service_model("s3", "endpoint-rule-set-1")
    for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        loader.load_data(name)


def _status(exc: Any) -> int:
    meta = getattr(exc, "response", {}).get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode") or 0)


class _reaching_s3:
    """Network failures, S3's own 5xx, a refusal of our credentials or a
    missing bucket become `Unavailable` (503); only a missing key (404) of a
    read passes through. The log line names the key, never the credentials
    or a signature."""

    def __init__(self, key: str, *, reading: bool = True) -> None:
        self.key = key
        self.reading = reading

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | OSError | TimeoutError):
            logger.warning("file store unreachable (%s) for %s", type(exc).__name__, self.key)
            raise Unavailable(STORAGE_DOWN) from None
        if isinstance(exc, ClientError) and not (self.reading and _status(exc) == 404):
            code = exc.response.get("Error", {}).get("Code", "")
            logger.error("file store refused %s (%s %s)", self.key, _status(exc), code)
            raise Unavailable(STORAGE_DOWN) from None


def open_storage(url: str | None, data_dir: Path) -> Storage:
    """The store a `DROPROOM_STORAGE_URL` names (not yet opened): None is
    `data_dir/files`; `file://DIR` a directory; `s3://BUCKET/PREFIX` S3 with
    the standard AWS variables (`AWS_ENDPOINT_URL` for S3-compatible stores)."""
    if not url:
        return LocalStorage(data_dir / "files")
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise Invalid("file:// storage needs a directory: file:///path/to/dir")
        return LocalStorage(Path(path))
    if parts.scheme == "s3":
        return S3Storage(
            parts.netloc,
            parts.path,
            endpoint_url=_env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL"),
            region=_env("AWS_REGION") or _env("AWS_DEFAULT_REGION"),
        )
    raise Invalid(f"storage URL must be file://DIR or s3://BUCKET/PREFIX, not {parts.scheme}://")


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None
