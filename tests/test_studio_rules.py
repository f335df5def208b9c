"""The studio's pure rules, table by table: stock edits, what an edit may
change, which products a room shows, invite requests and their pages, and
the image bounds (media.images on bytes, no server)."""

import io

import pytest
from PIL import Image

from commerce.catalog import Inventory, Kind, Product, check_shown_by
from commerce.product_edit import parse_edit, stock_delta
from kernel.errors import Conflict, Forbidden, Invalid
from kernel.owners import ADMIN_OWNER
from media.images import TooManyPixels, check_size, reencode
from rooms.invites import DEFAULT_TTL_S, page_for, parse_request
from rooms.roles import Role

TEE = Product("tee", "Tee", 1500, "eur", Kind.PHYSICAL, 10, owner="acct_ann")


@pytest.mark.parametrize(
    ("target", "inv", "pool_left", "delta"),
    [
        (10, Inventory(10, 10, 0, 0), 10, 0),
        (15, Inventory(10, 4, 3, 3), 4, 5),  # adding is always fine
        (6, Inventory(10, 4, 3, 3), 4, -4),  # down to held + sold, all from the pool
        (8, Inventory(10, 4, 3, 3), 2, -2),  # the pool holds 2 of the 4 left
    ],
)
def test_stock_edits_that_pass(target: int, inv: Inventory, pool_left: int, delta: int) -> None:
    assert stock_delta(target, inv, pool_left) == delta


@pytest.mark.parametrize(
    ("target", "inv", "pool_left", "says"),
    [
        (5, Inventory(10, 4, 3, 3), 4, "6 units held or sold"),
        (0, Inventory(10, 9, 0, 1), 9, "1 units held or sold"),
        (7, Inventory(10, 4, 3, 3), 2, "stock 8 at least"),  # 2 units in a room's share
    ],
)
def test_stock_edits_that_are_refused(
    target: int, inv: Inventory, pool_left: int, says: str
) -> None:
    with pytest.raises(Conflict, match=says):
        stock_delta(target, inv, pool_left)


def test_an_edit_changes_only_what_it_names() -> None:
    edit = parse_edit({"price": 900, "tags": "Calm,retro"}, TEE)
    assert (edit.product.price, edit.product.tags, edit.product.title) == (
        900,
        ("calm", "retro"),
        "Tee",
    )
    assert not edit.stock_given
    same = parse_edit({"kind": "physical", "owner": "acct_ann", "title": "Tour tee"}, TEE)
    assert same.product.title == "Tour tee"  # naming a fixed field unchanged is no change
    for bad in ({}, {"kind": "digital"}, {"owner": "acct_bob"}, {"price": 10**9}):
        with pytest.raises(Invalid):
            parse_edit(bad, TEE)
    with pytest.raises(Conflict):
        parse_edit({"stock": None}, TEE)


@pytest.mark.parametrize(
    ("room_owner", "product_owner", "shown"),
    [
        ("acct_ann", "acct_ann", True),
        ("acct_ann", "acct_bob", False),
        ("acct_ann", ADMIN_OWNER, False),
        (ADMIN_OWNER, "acct_bob", True),
        (ADMIN_OWNER, ADMIN_OWNER, True),
    ],
)
def test_a_room_shows_its_owners_products(room_owner: str, product_owner: str, shown: bool) -> None:
    product = Product("p", "P", 100, "eur", Kind.DIGITAL, None, owner=product_owner)
    if shown:
        check_shown_by(product, room_owner)
    else:
        with pytest.raises(Forbidden, match="another creator"):
            check_shown_by(product, room_owner)


def test_invite_requests_their_defaults_and_pages() -> None:
    req = parse_request({"name": "Mo", "role": "moderator"}, DEFAULT_TTL_S)
    assert req.identity.startswith("moderator-") and req.ttl_s == 7 * 24 * 3600
    assert parse_request({"name": "x", "role": "host"}, 10**9).ttl_s == 30 * 24 * 3600
    assert parse_request({"name": "x", "role": "host", "ttl_s": 120}, 600).ttl_s == 120
    for bad in (
        {"name": "x", "role": "boss"},
        {"role": "host"},
        {"name": "x", "role": "host", "ttl_s": 5},
    ):
        with pytest.raises(Invalid):
            parse_request(bad, DEFAULT_TTL_S)
    assert [page_for(r) for r in Role] == ["r", "r", "host", "host"]


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def test_image_bounds() -> None:
    check_size(8000, 5000, 40_000_000)
    with pytest.raises(
        TooManyPixels, match=r"8000x5001 \(40\.0 megapixels\); at most 40 megapixels"
    ):
        check_size(8000, 5001, 40_000_000)
    bounds = {"max_side": 20, "quality": 80, "formats": {"PNG"}}
    with pytest.raises(TooManyPixels):
        reencode(_png((40, 30)), max_pixels=1000, **bounds)  # type: ignore[arg-type]
    done = reencode(_png((40, 20), "RGBA"), max_pixels=10_000, **bounds)  # type: ignore[arg-type]
    kept = Image.open(io.BytesIO(done.data))
    assert (kept.format, kept.size, kept.mode) == ("WEBP", (20, 10), "RGBA")
    with pytest.raises(Invalid, match="JPEG, PNG, WebP or GIF, not BMP"):
        out = io.BytesIO()
        Image.new("RGB", (4, 4)).save(out, "BMP")
        reencode(out.getvalue(), max_pixels=1000, **bounds)  # type: ignore[arg-type]
