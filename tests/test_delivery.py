"""Delivery of digital audio products (PROTOCOL "Digital audio products"): a
paid order's receipt carries signed, buyer-bound, short-lived links per
variant and the bundle; the files they serve hash to the listed sha256;
Range, ETag, Content-Disposition and Cache-Control as specified; tampered,
foreign and expired links are 403; the library mints fresh links and a
refund stops them; a re-upload gives new buyers new files. Real server,
real Redis, localstripe through the official SDK."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlsplit

from commerce import keys
from commerce.orders import Order
from commerce.storage import tone_key
from server.appkeys import DOWNLOADS, SCHEDULER, STORAGE
from server.shop.resources import SHOP
from tests.delivery_helpers import VARIANTS, buy, drop_of, fetch, sha, tone
from tests.harness import Harness

ROOM = "tones"


def _by_format(order: dict) -> dict[str, dict]:
    return {d["format"]: d for d in order["receipt"]["downloads"]}


async def test_a_paid_tone_comes_with_working_links(server: Harness, tmp_path: Path) -> None:
    files = await tone(server, tmp_path)
    drop_id = await drop_of(server, ROOM)
    _, order = await buy(server, ROOM, "alice", drop_id)
    links = _by_format(order)
    assert sorted(links) == sorted([*VARIANTS, "bundle"])
    ttl = server.settings.download_ttl_s
    for fmt, link in links.items():
        assert link["product_id"] == "ring" and link["bytes"] == len(files[fmt])
        assert link["devices"] and set(link["devices"]) <= {"iphone", "android", "other", "feature"}
        assert link["url"].startswith(server.url + "/files/dl/")
        status, headers, body = await fetch(link["url"])
        assert status == 200, (fmt, body)
        assert sha(body) == link["sha256"] == sha(files[fmt])
        assert headers["ETag"] == f'"{link["sha256"]}"'
        ext = "zip" if fmt == "bundle" else fmt
        assert headers["Content-Disposition"].startswith(
            f'attachment; filename="Morning Bell.{ext}"'
        )
        max_age = int(headers["Cache-Control"].removeprefix("private, max-age="))
        assert 0 < max_age <= ttl and headers["Cache-Control"].startswith("private")
    assert links["m4r"]["devices"] == ["iphone"] and links["3gp"]["devices"] == ["feature"]
    assert links["m4r"]["expires_at"] <= server.app[SCHEDULER].clock() + ttl
    assert (await fetch(links["m4r"]["url"]))[1]["Content-Type"] == "audio/mp4"
    assert (await fetch(links["3gp"]["url"]))[1]["Content-Type"] == "audio/3gpp"
    # Coming back (reconnect), room:state carries the order with fresh links.
    again = await server.connect(ROOM, "alice")
    (latest,) = again.received("room:state")[0]["orders"]
    assert {d["sha256"] for d in latest["receipt"]["downloads"]} == {
        d["sha256"] for d in links.values()
    }
    # The delivery was timed: a Prometheus histogram and the room's record.
    status, text = await _metrics(server)
    assert 'droproom_download_links_total{format="m4r"}' in text
    assert "droproom_delivery_seconds_count 1.0" in text
    assert 'droproom_downloads_total{format="m4r"} ' in text
    redis = server.app[SHOP].orders._redis
    assert await redis.llen(keys.delivery_ms(ROOM)) == 1
    kept = await server.app[DOWNLOADS].delivery_ms(ROOM)
    assert kept["p50"] is not None and kept["p50"] == kept["p99"]


async def _metrics(server: Harness) -> tuple[int, str]:
    status, _, body = await fetch(server.url + "/metrics")
    return status, body.decode()


async def test_range_etag_and_not_modified(server: Harness, tmp_path: Path) -> None:
    """Both ways a file goes out: a small one from memory (.m4r here), a
    large one by sendfile (the bundle)."""
    files = await tone(server, tmp_path)
    drop_id = await drop_of(server, ROOM)
    _, order = await buy(server, ROOM, "bob", drop_id)
    for fmt in ("m4r", "bundle"):
        link, size = _by_format(order)[fmt], len(files[fmt])
        status, headers, body = await fetch(link["url"], Range="bytes=100-1099")
        assert status == 206 and body == files[fmt][100:1100]
        assert headers["Content-Range"] == f"bytes 100-1099/{size}"
        assert headers["ETag"] == f'"{link["sha256"]}"'
        assert headers["Content-Disposition"].startswith("attachment;")
        status, headers, body = await fetch(link["url"], Range="bytes=-500")
        assert status == 206 and body == files[fmt][-500:]
        assert headers["Content-Range"] == f"bytes {size - 500}-{size - 1}/{size}"
        status, headers, _ = await fetch(link["url"], Range="bytes=999999-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        status, headers, body = await fetch(link["url"], **{"If-None-Match": f'"{link["sha256"]}"'})
        assert status == 304 and body == b"" and headers["ETag"] == f'"{link["sha256"]}"'
        status, _, body = await fetch(link["url"], **{"If-None-Match": '"something-else"'})
        assert status == 200 and sha(body) == link["sha256"]


def _payload(url: str) -> tuple[list, str, str]:
    token, name = urlsplit(url).path.removeprefix("/files/dl/").split("/")
    payload, mac = token.split(".")
    return json.loads(base64.urlsafe_b64decode(payload + "==")), mac, name


def _forge(url: str, parts: list, mac: str, name: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(parts, separators=(",", ":")).encode())
    base = url.split("/files/dl/")[0]
    return f"{base}/files/dl/{payload.rstrip(b'=').decode()}.{mac}/{name}"


async def _refused(url: str) -> str:
    status, headers, body = await fetch(url)
    assert status == 403, (status, body)
    assert headers["Content-Type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "forbidden" and error["message"]
    return str(error["message"])


async def test_tampered_foreign_and_expired_links_are_refused(
    server: Harness, tmp_path: Path
) -> None:
    await tone(server, tmp_path)
    drop_id = await drop_of(server, ROOM)
    _, mine = await buy(server, ROOM, "carol", drop_id)
    _, theirs = await buy(server, ROOM, "dan", drop_id)
    link = _by_format(mine)["m4r"]["url"]
    parts, mac, name = _payload(link)
    assert parts[1] == "carol" and parts[3] == mine["id"]  # bound to the buyer and order
    other_order = [*parts[:3], theirs["id"], *parts[4:]]
    other_buyer = [parts[0], "dan", *parts[2:]]
    other_format = [*parts[:5], "m4a", *parts[6:]]
    later = [*parts[:7], parts[7] + 3600, parts[8]]
    for forged in (other_order, other_buyer, other_format, later):
        await _refused(_forge(link, forged, mac, name))
    await _refused(link[:-12] + ("A" if link[-12] != "A" else "B") + link[-11:])  # the name
    token_end = link.index("/", len(server.url + "/files/dl/")) - 1
    flipped = link[:token_end] + ("A" if link[token_end] != "A" else "B") + link[token_end + 1 :]
    await _refused(flipped)  # the signature
    await _refused(server.url + "/files/dl/garbage/x.m4r")
    # dan's own link works; carol's link never becomes dan's.
    assert (await fetch(_by_format(theirs)["m4r"]["url"]))[0] == 200
    # Expiry: checked on every request, by the server's clock.
    assert (await fetch(link))[0] == 200
    real = server.app[SCHEDULER].clock
    server.app[SCHEDULER].clock = lambda: real() + server.settings.download_ttl_s + 1
    assert "expired" in await _refused(link)


async def _library(server: Harness, identity: str, room: str = ROOM) -> list[dict]:
    status, body = await server.request(
        "GET", "/api/v1/me/library", token=server.token(room, identity)
    )
    assert status == 200, body
    return list(body["items"])


async def test_the_library_mints_fresh_links_and_a_refund_stops_them(
    server: Harness, tmp_path: Path
) -> None:
    files = await tone(server, tmp_path)
    drop_id = await drop_of(server, ROOM)
    _, order = await buy(server, ROOM, "erin", drop_id)
    (item,) = await _library(server, "erin")
    assert item["order_id"] == order["id"] and item["product"]["id"] == "ring"
    assert item["granted_at"] == order["receipt"]["paid_at"]
    by_format = {d["format"]: d for d in item["downloads"]}
    assert sorted(by_format) == sorted([*VARIANTS, "bundle"])
    status, _, body = await fetch(by_format["mp3"]["url"])
    assert status == 200 and body == files["mp3"]
    # A file the store lost answers 404 with an error body.
    lost = server.app[STORAGE].local_path(tone_key(by_format["bundle"]["sha256"], "bundle"))
    assert lost is not None
    lost.unlink()
    status, _, body = await fetch(by_format["bundle"]["url"])
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    # Later, the library answers links that live from now.
    real = server.app[SCHEDULER].clock
    server.app[SCHEDULER].clock = lambda: real() + 3000
    (later,) = await _library(server, "erin")
    assert later["downloads"][0]["expires_at"] > by_format["opus"]["expires_at"] + 2000
    server.app[SCHEDULER].clock = real
    assert await _library(server, "someone-else") == []
    # A refund (real money back through localstripe) stops new links at once...
    shop = server.app[SHOP]
    issued = by_format["m4r"]["url"]
    await shop.settlement.refund(ROOM, order["id"], real())
    refunded: Order = await shop.orders.get(ROOM, order["id"])
    assert refunded.status == "refunded" and refunded.refund_ref
    assert await _library(server, "erin") == []
    again = await server.connect(ROOM, "erin")
    (seen,) = again.received("room:state")[0]["orders"]
    assert seen["status"] == "refunded" and "downloads" not in seen.get("receipt", {})
    # ...and a link already issued ends at its expiry.
    assert (await fetch(issued))[0] == 200
    server.app[SCHEDULER].clock = lambda: real() + server.settings.download_ttl_s + 1
    await _refused(issued)


async def test_a_reupload_gives_new_buyers_new_files_and_old_buyers_keep_theirs(
    server: Harness, tmp_path: Path
) -> None:
    old = await tone(server, tmp_path, seed="old")
    drop_id = await drop_of(server, ROOM)
    _, first = await buy(server, ROOM, "fay", drop_id)
    new = await tone(server, tmp_path, seed="new")  # the creator uploads a better take
    _, second = await buy(server, ROOM, "gus", drop_id)
    assert _by_format(first)["m4r"]["sha256"] == sha(old["m4r"])
    assert _by_format(second)["m4r"]["sha256"] == sha(new["m4r"])
    (fay,) = await _library(server, "fay")
    (gus,) = await _library(server, "gus")
    for item, files in ((fay, old), (gus, new)):
        for d in item["downloads"]:
            status, _, body = await fetch(d["url"])
            assert status == 200 and body == files[d["format"]]


async def test_a_digital_product_without_ready_audio_entitles_nothing(
    server: Harness, tmp_path: Path
) -> None:
    product = {"id": "soon", "title": "Soon", "price": 99, "currency": "eur", "kind": "digital"}
    await server.admin_post("/api/v1/products", product)
    drop_id = await drop_of(server, ROOM, "soon")
    _, order = await buy(server, ROOM, "hal", drop_id)
    assert order["receipt"]["downloads"] == []
    assert await _library(server, "hal") == []
    status, body = await server.request("GET", "/api/v1/me/library")
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_previews_are_public_and_immutable(server: Harness, tmp_path: Path) -> None:
    from server.appkeys import STORAGE

    body = b"ID3" + bytes(5000)
    digest = sha(body)
    src = tmp_path / "p.mp3"
    src.write_bytes(body)
    await server.app[STORAGE].put_file(src, f"previews/{digest}.mp3", "audio/mpeg")
    status, headers, got = await fetch(f"{server.url}/files/previews/{digest}.mp3")
    assert status == 200 and got == body
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Type"] == "audio/mpeg" and headers["ETag"] == f'"{digest}"'
    for bad in ("0" * 64 + ".mp3", "../../secret", digest + ".wav"):
        assert (await fetch(f"{server.url}/files/previews/{bad}"))[0] == 404


def test_storage_urls_name_a_directory_or_a_bucket(tmp_path: Path) -> None:
    import pytest

    from commerce.storage import LocalStorage, S3Storage, open_storage
    from kernel.errors import Invalid

    default = open_storage(None, tmp_path)
    assert isinstance(default, LocalStorage) and default.root == tmp_path / "files"
    local = open_storage(f"file://{tmp_path}/elsewhere", tmp_path)
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "elsewhere"
    s3 = open_storage("s3://bucket/some/prefix/", tmp_path)
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.object_key("tones/x.m4r") == "some/prefix/tones/x.m4r"
    for bad in ("ftp://x/y", "s3:///prefix", "file://"):
        with pytest.raises(Invalid):
            open_storage(bad, tmp_path)
    with pytest.raises(Invalid):
        default.local_path("../secret")


async def test_an_uploaded_tone_bought_plays_on_every_device(
    server: Harness, tmp_path: Path
) -> None:
    """End to end with the real pipeline: upload a sound, buy the tone, and
    every downloaded file decodes as what its format promises."""
    import asyncio
    import io
    import time
    import zipfile

    import av

    from tests.sound_helpers import make_sound

    product = {"id": "real", "title": "Réveil #1", "price": 199, "currency": "eur"}
    await server.admin_post("/api/v1/products", product | {"kind": "digital"})
    sound = make_sound(tmp_path / "chime.wav", freq=660, seconds=4.0)
    status, body = await server.request(
        "POST",
        "/api/v1/products/real/audio",
        admin=True,
        data=await asyncio.to_thread(sound.read_bytes),
        headers={"Content-Type": "audio/wav"},
    )
    assert status == 202, body
    deadline = time.monotonic() + 120
    while (audio := (await server.request("GET", "/api/v1/products/real"))[1]["audio"])[
        "state"
    ] != "ready":
        assert audio["state"] == "processing" and time.monotonic() < deadline, audio
        await asyncio.sleep(0.2)
    drop_id = await drop_of(server, ROOM, "real")
    _, order = await buy(server, ROOM, "guest-ivy", drop_id)
    links = _by_format(order)
    codecs = {"m4r": "aac", "m4a": "aac", "mp3": "mp3", "opus": "opus", "3gp": "amrnb"}
    for fmt, codec in codecs.items():
        status, headers, body = await fetch(links[fmt]["url"])
        assert status == 200 and sha(body) == links[fmt]["sha256"]
        assert f'filename="R_veil _1.{fmt}"' in headers["Content-Disposition"]
        assert "filename*=UTF-8''R%C3%A9veil%20%231." + fmt in headers["Content-Disposition"]
        with av.open(io.BytesIO(body)) as container:
            assert container.streams.audio[0].codec_context.name.startswith(codec), fmt
    status, _, bundle = await fetch(links["bundle"]["url"])
    assert status == 200 and sha(bundle) == links["bundle"]["sha256"]
    with zipfile.ZipFile(io.BytesIO(bundle)) as zipped:
        assert "manifest.json" in zipped.namelist()
    status, headers, preview = await fetch(server.url + audio["preview_url"])
    assert status == 200 and headers["Cache-Control"].endswith("immutable")
    assert sha(preview) == audio["preview"]["sha256"]


async def test_my_orders_carry_fresh_links_like_the_receipt(
    server: Harness, tmp_path: Path
) -> None:
    files = await tone(server, tmp_path)
    drop_id = await drop_of(server, ROOM)
    buyer = "guest-0a1b2c3d4e"  # an identity /guest hands out: it may read /me/*
    _, order = await buy(server, ROOM, buyer, drop_id)
    status, body = await server.request("GET", "/api/v1/me/orders", token=server.token(ROOM, buyer))
    assert status == 200, body
    (mine,) = body["orders"]
    assert mine["id"] == order["id"] and mine["status"] == "paid"
    links = _by_format(mine)
    assert sorted(links) == sorted([*VARIANTS, "bundle"])
    status, _, got = await fetch(links["m4r"]["url"])
    assert status == 200 and got == files["m4r"]
