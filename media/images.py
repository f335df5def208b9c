"""Product images through Pillow: read the header, refuse what is too large
before a pixel is decoded, then decode, turn upright, drop every piece of
metadata, shrink and re-encode as WebP.

Why here: media/ is the package that does heavy transforms of uploaded
media off the event loop (the tone pipeline is its sibling); decoding an
image is that kind of work, CPU-bound and fed untrusted bytes. The bounds
are commerce.images' (the product's rules), passed in as numbers, so this
module knows no domain. Pillow is an imaging library, not a framework: no
aiohttp, socketio or commerce here. Everything is synchronous: the caller
runs it in a bounded thread pool.

Decompression bombs: `Image.open` is lazy (it reads the header only) and
the size check runs before `load`; Pillow's own guard is set to the same
limit (`Image.MAX_IMAGE_PIXELS`: it warns above it and raises above twice
it, also at `open`), so even a path that forgot our check cannot decode
more than twice the limit.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from kernel.errors import Invalid

PILLOW_GUARD_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = PILLOW_GUARD_PIXELS


class TooManyPixels(Invalid):
    """The header says the picture is larger than allowed (nothing decoded)."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """The re-encoded picture: WebP bytes and their size in pixels."""

    data: bytes
    width: int
    height: int
    source_format: str


def check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise Invalid("the image has no pixels")
    if width * height > max_pixels:
        mp = width * height / 1_000_000
        raise TooManyPixels(
            f"the image is {width}x{height} ({mp:.1f} megapixels); "
            f"at most {max_pixels / 1_000_000:g} megapixels"
        )


def _opened(data: bytes, formats: Collection[str]) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))  # lazy: the header only
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image is far too large: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise Invalid("this is not an image we can read (JPEG, PNG, WebP or GIF)") from None
    if image.format not in formats:
        image.close()
        raise Invalid(f"images must be JPEG, PNG, WebP or GIF, not {image.format}")
    return image


def _upright_rgb(image: Image.Image, max_side: int) -> Image.Image:
    """Decoded (the first frame of an animation), upright, shrunk, in RGB or
    RGBA, carrying no metadata."""
    if image.format == "JPEG":
        image.draft("RGB", (max_side, max_side))  # decode at a smaller scale when it can
    upright = ImageOps.exif_transpose(image)  # decodes; the EXIF orientation applied
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    plain = upright.convert("RGBA" if has_alpha else "RGB")
    plain.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # A new image from the pixels alone: no info, no EXIF, no ICC, no XMP.
    clean = Image.new(plain.mode, plain.size)
    clean.paste(plain)
    return clean


def reencode(
    data: bytes, *, max_pixels: int, max_side: int, quality: int, formats: Collection[str]
) -> Encoded:
    """The upload as a clean WebP; `TooManyPixels` before decoding anything
    larger than `max_pixels`, `Invalid` for what is not a readable image."""
    with _opened(data, formats) as image:
        check_size(*image.size, max_pixels)
        source_format = str(image.format)
        try:
            clean = _upright_rgb(image, max_side)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise Invalid("the image is damaged or truncated; nothing was kept") from None
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=quality, method=4, exif=b"")
    return Encoded(out.getvalue(), clean.width, clean.height, source_format)
