"""An upload's bytes, streamed: the raw body of an allowed type, or the
multipart field `file`. Shared by the tone and image upload routes."""

from collections.abc import AsyncIterator, Collection

from aiohttp import BodyPartReader, web

from kernel.errors import Invalid

MULTIPART = "multipart/form-data"
CHUNK = 256 * 1024


async def body_chunks(
    request: web.Request, allowed: Collection[str], what: str
) -> AsyncIterator[bytes]:
    """Chunks of at most CHUNK bytes; `Invalid` (naming `what`, e.g. "a sound
    (audio/wav, ...)") for another content type or a multipart body without
    `file`."""
    if request.content_type == MULTIPART:
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "file":
                while chunk := await part.read_chunk(CHUNK):
                    yield chunk
                return
        raise Invalid("the multipart body has no field named file")
    if request.content_type not in allowed:
        raise Invalid(
            f"the body must be {what} or {MULTIPART} with a field named file, "
            f"not {request.content_type}"
        )
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk
