"""The product side of server.owners: the admin or the product's owner."""

from aiohttp import web

from accounts.ownership import Actor
from commerce.catalog import Product
from kernel.errors import NotFound
from server.owners import require_owner
from server.shop.resources import SHOP


async def require_product_owner(request: web.Request, product_id: str) -> tuple[Actor, Product]:
    """The admin or the product's owner, and the product (`NotFound` if none:
    asked before the caller's rights, like every public product read)."""
    product = await request.app[SHOP].catalog.product(product_id)
    if product is None:
        raise NotFound(f"no product {product_id}")
    return await require_owner(request, product.owner), product
