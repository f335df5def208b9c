"""Sending a stored file: small ones from memory, the rest by sendfile.

Files are content-addressed and immutable (the key holds the sha256), so
a small file once read can be kept in memory for good: `SmallFiles` keeps
the most recently served ones up to a byte budget, and a rush of a tiny
.3gp costs no thread hop, no open/stat/close and no sendfile call per
request. Larger files (an .m4r, a bundle) go out by aiohttp's FileResponse
(sendfile); their names are remembered so they are not probed again. A file
missing at its first probe answers 404 with an error body (later, aiohttp's
bare 404: a bought file is never removed, so either means a lost store).
Both answer Range (206/416) and carry the same headers; `served` hears the
seconds until the last byte was handed to the socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from kernel.errors import NotFound

logger = logging.getLogger(__name__)

SMALL_FILE = 256 * 1024  # kept in memory up to this size
MEMORY_BUDGET = 64 * 1024 * 1024
LARGE_KNOWN = 100_000  # names of large files remembered (each ~100 bytes)
Served = Callable[[float], None]


class SmallFiles:
    """The recently served small files' bytes, least recently used out first."""

    def __init__(self, max_file: int = SMALL_FILE, budget: int = MEMORY_BUDGET) -> None:
        self.max_file = max_file
        self.budget = budget
        self._held: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._large: set[str] = set()  # files known to be too big: not probed again

    async def get(self, path: Path) -> bytes | None:
        """The file's bytes when it is small, None when it is not
        (FileNotFoundError when it is missing)."""
        key = str(path)
        body = self._held.get(key)
        if body is not None:
            self._held.move_to_end(key)
            return body
        if key in self._large:
            return None
        body = await asyncio.to_thread(_read_small, path, self.max_file)
        if body is not None:
            self._keep(key, body)
        elif len(self._large) < LARGE_KNOWN:
            self._large.add(key)
        return body

    def _keep(self, key: str, body: bytes) -> None:
        if key in self._held:
            return
        self._held[key] = body
        self._size += len(body)
        while self._size > self.budget:
            _, dropped = self._held.popitem(last=False)
            self._size -= len(dropped)


def _read_small(path: Path, max_file: int) -> bytes | None:
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size > max_file:
            return None
        return f.read()


class ToneFile(web.FileResponse):
    """aiohttp's FileResponse (sendfile, Range, 416) whose ETag is the file's
    sha256 (aiohttp would set its own from mtime and size), timed."""

    def __init__(
        self, path: Any, sha256: str, headers: dict[str, str], served: Served | None = None
    ) -> None:
        super().__init__(path, headers=headers)
        self._sha256 = sha256
        self._served = served

    @property
    def etag(self) -> Any:
        return web.FileResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, value: Any) -> None:
        web.FileResponse.etag.fset(self, self._sha256)  # type: ignore[attr-defined]

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        started = time.perf_counter()
        writer = await super().prepare(request)  # stats the file off the loop
        if self._served is not None and self.status in (200, 206):
            self._served(time.perf_counter() - started)
        return writer


class BytesFile(web.Response):
    """A small file from memory, timed like ToneFile."""

    def __init__(self, served: Served | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._served = served
        self._started = time.perf_counter()

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)  # drains: the last byte is with the socket
        if self._served is not None and self.status in (200, 206):
            self._served(time.perf_counter() - self._started)


def from_memory(
    request: web.Request, body: bytes, headers: dict[str, str], served: Served | None
) -> web.Response:
    """`body` as a 200, or the slice a Range asks for (206; 416 when none)."""
    size = len(body)
    headers = {**headers, "Accept-Ranges": "bytes"}
    try:
        rng = request.http_range
    except ValueError:
        return _unsatisfiable(size, headers)
    start, stop = rng.start, rng.stop
    if start is None:
        return BytesFile(served, body=body, headers=headers)
    if start < 0 and stop is None:  # the last -start bytes
        start, stop = max(0, size + start), size
    else:
        stop = min(stop if stop is not None else size, size)
    if start >= size:
        return _unsatisfiable(size, headers)
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return BytesFile(served, status=206, body=body[start:stop], headers=headers)


def _unsatisfiable(size: int, headers: dict[str, str]) -> web.Response:
    return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})


async def send(
    request: web.Request,
    small: SmallFiles,
    path: Path,
    sha256: str,
    headers: dict[str, str],
    served: Served | None = None,
) -> web.StreamResponse:
    try:
        body = await small.get(path)
    except FileNotFoundError:  # never for a bought file: the store lost it
        logger.error("file %s is missing from the store", path.name)
        raise NotFound("this file is missing from the store") from None
    if body is not None:
        return from_memory(request, body, headers, served)
    return ToneFile(path, sha256, headers, served)
