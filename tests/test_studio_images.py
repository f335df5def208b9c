"""Product images of the creator studio: re-encoded as WebP, upright,
without their metadata, at most 1200 px; bounded before any pixel is
decoded; only the owner or the admin sets them."""

import asyncio
import hashlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import ExifTags, Image, ImageFile

from server.config import Settings
from tests.harness import Harness
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer
from tests.studio_helpers import Person, creator, forbidden, make_product


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url)


@pytest.fixture
async def ann(server: Harness, smtp: SmtpServer) -> Person:
    return await creator(server, smtp, "ann@example.com", "Ann")


@pytest.fixture
async def bob(server: Harness, smtp: SmtpServer) -> Person:
    return await creator(server, smtp, "bob@example.com", "Bob")


# --- 5. product images -------------------------------------------------------------


def _photo_with_gps() -> bytes:
    """A 2400x1200 JPEG a phone took sideways (orientation 6) with its GPS."""
    image = Image.new("RGB", (2400, 1200), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 1200, 1200))  # left half blue: shows the rotation
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def _looked_at(data: bytes) -> dict[str, Any]:
    """What a reader of the file sees (Pillow off the loop: its first use
    imports every plugin)."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        seen: dict[str, Any] = {
            "format": image.format,
            "size": image.size,
            "exif": dict(exif),
            "gps": dict(exif.get_ifd(ExifTags.IFD.GPSInfo)),
            "info": set(image.info),
        }
        width = image.size[0]
        seen["top"] = image.convert("RGB").getpixel((width // 2, 100))
    return seen


def _huge_png() -> bytes:
    """50 megapixels in a few kilobytes: one colour, one bit per pixel."""
    out = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(out, "PNG")
    return out.getvalue()


async def _upload(
    server: Harness, who: Person | None, pid: str, body: bytes, kind: str = "image/jpeg"
) -> tuple[int, dict]:
    token = who.token if who else server.settings.admin_key
    headers = {"Content-Type": kind, "Authorization": f"Bearer {token}"}
    url = f"{server.url}/api/v1/products/{pid}/image"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_an_image_comes_back_upright_small_webp_without_its_metadata(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-poster")
    photo = await asyncio.to_thread(_photo_with_gps)
    sent = await asyncio.to_thread(_looked_at, photo)
    assert sent["gps"]  # the upload carries GPS
    status, product = await _upload(server, ann, "ann-poster", photo)
    assert status == 200, product
    assert re.fullmatch(r"/files/images/[0-9a-f]{64}\.webp", product["image_url"])
    _, public = await server.request("GET", "/api/v1/products/ann-poster")
    assert public["image_url"] == product["image_url"]
    async with aiohttp.ClientSession() as http, http.get(server.url + product["image_url"]) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "image/webp"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "immutable" in r.headers["Cache-Control"]
        body = await r.read()
    sha = product["image_url"].split("/")[-1].removesuffix(".webp")
    assert hashlib.sha256(body).hexdigest() == sha
    kept = await asyncio.to_thread(_looked_at, body)
    assert kept["format"] == "WEBP" and kept["size"] == (600, 1200)  # upright, long side 1200
    assert (
        not kept["exif"] and not kept["gps"] and not {"exif", "icc_profile", "xmp"} & kept["info"]
    )
    assert b"Exif" not in body and b"PhoneMaker" not in body and b"XMP" not in body
    top = kept["top"]
    assert isinstance(top, tuple) and top[2] > 150 > top[0]  # the blue half is on top now
    status, again = await _upload(server, ann, "ann-poster", photo)
    assert status == 200 and again["image_url"] == product["image_url"]  # content-addressed


# Pillow's own guard warns between its limit and twice it (ours refuses first)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_a_50_megapixel_png_is_refused_without_being_decoded(
    server: Harness, ann: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_product(server, ann, "ann-huge")
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    huge = await asyncio.to_thread(_huge_png)
    assert len(huge) < 100_000
    status, body = await _upload(server, ann, "ann-huge", huge, "image/png")
    assert status == 400 and "megapixels" in body["error"]["message"], body
    assert decoded == []
    far = await asyncio.to_thread(lambda: _png((20_000, 10_000)))  # past Pillow's own guard
    status, body = await _upload(server, ann, "ann-huge", far, "image/png")
    assert status == 400 and decoded == []
    small = await asyncio.to_thread(lambda: _png((64, 64)))
    status, _ = await _upload(server, ann, "ann-huge", small, "image/png")
    assert status == 200 and set(decoded) == {(64, 64)}  # the same path decodes a fair image


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("1", size).save(out, "PNG")
    return out.getvalue()


async def test_what_is_not_an_image_is_refused_and_changes_nothing(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-bad", image_url="/static/old.png")
    broken = (await asyncio.to_thread(_photo_with_gps))[:5000]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for body, kind in (
        (b"hello, not an image", "image/png"),
        (svg, "image/png"),
        (b"GIF89a", "image/gif"),
        (broken, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "text/plain"),
        (b"", "image/png"),
    ):
        status, answer = await _upload(server, ann, "ann-bad", body, kind)
        assert status == 400 and answer["error"]["code"] == "invalid", (kind, body[:20], answer)
    status, answer = await _upload(server, ann, "ann-bad", b"\0" * (15 * 1024 * 1024 + 1))
    assert status == 413 and "15 MB" in answer["error"]["message"]
    _, public = await server.request("GET", "/api/v1/products/ann-bad")
    assert public["image_url"] == "/static/old.png"


async def test_only_the_owner_or_the_admin_sets_a_products_image(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-art")
    small = await asyncio.to_thread(lambda: _png((32, 16)))
    status, body = await _upload(server, bob, "ann-art", small, "image/png")
    assert forbidden(status, body)
    _, public = await server.request("GET", "/api/v1/products/ann-art")
    assert public["image_url"] is None
    form = aiohttp.FormData()
    form.add_field("file", small, filename="art.png", content_type="image/png")
    url = f"{server.url}/api/v1/products/ann-art/image"
    headers = {"Authorization": f"Bearer {server.settings.admin_key}"}
    async with aiohttp.ClientSession() as http, http.post(url, data=form, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["image_url"].endswith(".webp")
    status, _ = await _upload(server, ann, "nope", small, "image/png")
    assert status == 404
