"""Product images: the bounds every upload is held to, and where the result
is found. Pure: no imaging here (media.images decodes and re-encodes,
given these bounds), no framework.

- The upload: at most `MAX_BYTES` (413 beyond), one of `UPLOAD_TYPES` (raw
  body) or a multipart field `file`.
- Its picture: at most `MAX_PIXELS` (40 megapixels), known from the file's
  header before any pixel is decoded (4xx otherwise).
- What is kept: never the upload. The picture turned upright (EXIF
  orientation), every piece of metadata dropped (EXIF, GPS, XMP, ICC,
  comments), at most `MAX_SIDE` pixels on its long side, re-encoded as
  WebP, stored content-addressed (`images/<sha256>.webp`, the hash of the
  WebP) and served public and immutable at `image_url(sha256)`.
"""

from dataclasses import dataclass

from commerce.storage import image_key

MAX_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 1200
WEBP_QUALITY = 82
UPLOAD_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
# What Pillow reports for the types above: nothing else is decoded.
FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "MPO"})  # MPO: phones' multi-picture JPEG
URL_PREFIX = "/files/"


@dataclass(frozen=True, slots=True)
class ImageBounds:
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE
    quality: int = WEBP_QUALITY
    formats: frozenset[str] = FORMATS


BOUNDS = ImageBounds()


def image_url(sha256: str) -> str:
    """Public, cacheable: `/files/images/<sha256>.webp` (server/files serves it)."""
    return URL_PREFIX + image_key(sha256)
