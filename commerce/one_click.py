"""One-click buying (`buy:now`): a signed-in buyer with a saved card
reserves one drop or product, gets a pending order for it and pays it with
the saved card, in one event. The buyer's cart is not touched (the named
item only); a buyer who already has an order waiting for payment is
answered `conflict` (pay or cancel it first), never charged for it. 3-D
Secure works as in checkout: the answer's `requires_action` and client
secret let the page finish it. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from commerce import keys
from commerce.buyer_details import SHIPPING_REQUIRED, BuyerDetails
from commerce.buyers import BuyerIndex, is_account
from commerce.carts import AddRequest
from commerce.catalog import MAX_PRICE, Catalog, Kind
from commerce.checkout import Checkout, CheckoutResult
from commerce.drop_store import DropStore, drop_event
from commerce.events import ORDER_UPDATED
from commerce.inventory import StockMove, Target
from commerce.order_store import OrderStore
from commerce.orders import new_order_id
from commerce.shares import Shares
from kernel.errors import Conflict, Invalid, NotFound, SoldOut, Unauthorized
from kernel.events import Event, to_identity
from kernel.lua import Scripts

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OneClick:
    """What `buy:now` did: the checkout's result and the stock it moved."""

    result: CheckoutResult
    move: StockMove
    events: list[Event] = field(default_factory=list)


class BuyNow:
    def __init__(
        self,
        redis: Any,
        catalog: Catalog,
        drops: DropStore,
        orders: OrderStore,
        checkout: Checkout,
        hold_s: float,
        max_attempts: int,
    ) -> None:
        self._scripts = Scripts(redis)
        self._catalog = catalog
        self._drops = drops
        self._orders = orders
        self._checkout = checkout
        self._shares = Shares(redis, catalog)
        self._buyers = BuyerIndex(redis)
        self._hold_s = hold_s
        self._max_attempts = max_attempts

    async def buy(
        self, room: str, identity: str, req: AddRequest, details: BuyerDetails, now: float
    ) -> OneClick:
        """Load (the saved card, the item), then reserve and order in one
        script, then pay with the saved card."""
        if not is_account(identity):
            raise Unauthorized("sign in to buy in one click")
        saved = await self._checkout.customers.saved_card(identity)
        if saved is None:
            raise Conflict("no saved card: check out once with save_card first")
        target = Target(room, req.product_id or "", req.drop_id)
        product_id = req.product_id or (await self._drops.get(room, req.drop_id or "")).product_id
        product, _ = await self._catalog.get(product_id)
        if product.kind is Kind.PHYSICAL and details.shipping is None:
            raise Invalid(SHIPPING_REQUIRED)
        if product.kind is not Kind.PHYSICAL:  # an address is kept only for what ships
            details = BuyerDetails(details.email, None, details.save_card)
        order_id = new_order_id()
        await self._buyers.note(identity, room)
        res = await self._reserve(room, identity, target, req.qty, order_id, product.title,
                                  details, now)  # fmt: skip
        order = await self._orders.get(room, order_id)
        logger.info("room %s: order %s of %s (one click)", room, order_id, identity)
        move = StockMove(target.line_id, int(res[1]), res[2].decode())
        events = [to_identity(room, identity, ORDER_UPDATED, {"order": order.as_dict()})]
        if move.announced and target.drop_id:
            events.append(drop_event(await self._drops.get(room, target.drop_id), now))
        result = await self._checkout.pay(order, saved.payment_method, now)
        return OneClick(result, move, events + result.events)

    async def _reserve(
        self,
        room: str,
        identity: str,
        target: Target,
        qty: int,
        order_id: str,
        title: str,
        details: BuyerDetails,
        now: float,
    ) -> list[Any]:
        script_keys = [target.stock_key, target.buyers_key, keys.slots(room)]
        script_keys += [keys.order(room, order_id), keys.orders_holds(room)]
        script_keys += [keys.orders_created(room), keys.buyer_pending(room, identity)]
        script_keys += [keys.log(room), keys.log_head(room), keys.buyer_orders(room, identity)]
        script_keys += [keys.orders_all(room)]
        shipping = details.shipping.to_json() if details.shipping else ""
        args: list[Any] = [identity, target.line_id, qty, repr(now), repr(now + self._hold_s)]
        args += [target.drop_id or "", order_id, title, room, self._max_attempts, MAX_PRICE]
        args += [details.email or "", shipping, "1" if is_account(identity) else "0"]
        try:
            return list(await self._scripts.run("commerce/buy_now", script_keys, args))
        except (NotFound, SoldOut):
            # The room's share of the product lacks units (or was never made).
            if target.drop_id is not None:
                raise
            if not await self._shares.refill(room, target.product_id, qty, now):
                raise
            return list(await self._scripts.run("commerce/buy_now", script_keys, args))
