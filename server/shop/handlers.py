"""The shop's Socket.IO handlers (`slot:*`, `drop:*`, `cart:*`,
`checkout:start`, `order:cancel`). Thin: validate, call one commerce
function, emit its events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from commerce import checkout, drops, slots
from commerce import events as names
from commerce.buyer_details import BuyerDetails, parse_details
from commerce.carts import EMPTY, CartChange, parse_add, parse_line_id
from commerce.checkout import CheckoutResult
from commerce.customers import check_save_card
from commerce.orders import Order
from kernel import validate
from kernel.errors import NotFound
from kernel.events import Event, to_identity
from rooms import limits
from server.appkeys import ACCOUNTS, DISPATCHER, ROOMS
from server.buyers import signed_in_account
from server.dispatch import Ctx
from server.roles import Role
from server.shop.broadcast import BROADCAST, emit_coalesced
from server.shop.resources import SHOP


async def _room_owner(ctx: Ctx) -> str:
    """Whose room this is: it shows only their products (the admin's: any)."""
    room = await ctx.app[ROOMS].get_room(ctx.room)
    if room is None:
        raise NotFound("no such room")
    return room.owner


async def on_slot_pin(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    slot_no = slots.parse_slot(p)
    product_id = validate.ident(p, "product_id")
    note = validate.opt_text(p, "note", max_len=200)
    owner = await _room_owner(ctx)
    pinned, events = await ctx.app[SHOP].slots.pin(
        ctx.room, slot_no, product_id, note, ctx.now, room_owner=owner
    )
    await ctx.emit(events)
    return {"slot": pinned.as_dict()}


async def on_slot_unpin(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    await ctx.emit(await ctx.app[SHOP].slots.unpin(ctx.room, slots.parse_slot(p), ctx.now))
    return {}


async def on_drop_schedule(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    req = drops.parse_schedule(p, ctx.now)
    owner = await _room_owner(ctx)
    drop, events = await ctx.app[SHOP].drops.schedule(ctx.room, req, ctx.now, room_owner=owner)
    await ctx.emit(events)
    return {"drop": drop.as_dict(ctx.now)}


async def on_drop_restock(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    drop_id = validate.ident(p, "drop_id")
    add = validate.integer(p, "add", lo=1, hi=1_000_000)
    drop, events = await ctx.app[SHOP].drops.restock(ctx.room, drop_id, add, ctx.now)
    await ctx.emit(events)
    return {"drop": drop.as_dict(ctx.now)}


async def _cart_answer(ctx: Ctx, change: CartChange) -> dict[str, Any]:
    ctx.app[BROADCAST].touch(ctx.room, [change])
    cart = change.cart.as_dict()
    # The buyer's other tabs and devices follow the cart too.
    mine = to_identity(ctx.room, ctx.identity, names.CART_UPDATED, {"cart": cart})
    await ctx.emit([*change.events, mine])
    return {"cart": cart}


async def on_cart_add(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    req = parse_add(p)
    change = await ctx.app[SHOP].carts.add(ctx.room, ctx.identity, req, ctx.now)
    return await _cart_answer(ctx, change)


async def on_cart_remove(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    line_id = parse_line_id(p)
    change = await ctx.app[SHOP].carts.remove(ctx.room, ctx.identity, line_id, ctx.now)
    return await _cart_answer(ctx, change)


async def on_cart_get(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    return {"cart": (await ctx.app[SHOP].carts.get(ctx.room, ctx.identity)).as_dict()}


async def _details(ctx: Ctx, p: Mapping[str, Any]) -> BuyerDetails:
    """The buyer's details; a signed-in buyer who gives no email is reached
    at their account's (receipts, and the Stripe customer's email)."""
    details = parse_details(p)
    account = signed_in_account(ctx.claims)
    if details.email is None and account is not None:
        found = await ctx.app[ACCOUNTS].get(account)
        if found is not None:
            return dataclasses.replace(details, email=found.email)
    return details


async def on_checkout_start(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    method = checkout.parse_payment_method(p)
    details = await _details(ctx, p)
    check_save_card(ctx.identity, method, details.save_card)
    await limits.check(ctx.app[ROOMS], ctx.room, "checkout", ctx.identity)
    shop = ctx.app[SHOP]
    order, frozen = await shop.checkout.freeze(ctx.room, ctx.identity, ctx.now, details)
    await ctx.emit(frozen)  # the cart became an order, whatever happens next
    result = await shop.checkout.pay(order, method, ctx.now, save_card=details.save_card)
    return await _paying_answer(ctx, result, result.events)


async def on_buy_now(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    req = parse_add(p)
    details = await _details(ctx, p)
    await limits.check(ctx.app[ROOMS], ctx.room, "checkout", ctx.identity)
    shop = ctx.app[SHOP]
    done = await shop.buy_now.buy(ctx.room, ctx.identity, req, details, ctx.now)
    ctx.app[BROADCAST].touch(ctx.room, [CartChange(EMPTY, (done.move,))])
    return await _paying_answer(ctx, done.result, done.events)


async def _paying_answer(ctx: Ctx, result: CheckoutResult, events: list[Event]) -> dict[str, Any]:
    """`checkout:start`'s and `buy:now`'s answer, once the buyer was told of
    their order (its latest state, if the payment's events did not say it)."""
    told = any(e.name == names.ORDER_UPDATED for e in result.events)
    mine = [] if told else [await _order_event(ctx, result.order)]
    await emit_coalesced(ctx.app, [*events, *mine])
    answer = result.answer(ctx.app[SHOP].gateway.publishable_key)
    answer["order"] = await ctx.app[SHOP].order_dict(result.order, ctx.now)  # a paid one: its links
    return answer


async def on_order_cancel(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    order_id = validate.ident(p, "order_id")
    await limits.check(ctx.app[ROOMS], ctx.room, "checkout", ctx.identity)
    order, events = await ctx.app[SHOP].checkout.cancel(ctx.room, ctx.identity, order_id, ctx.now)
    await emit_coalesced(ctx.app, events)
    return {"order": order.as_dict()}


async def _order_event(ctx: Ctx, order: Order) -> Event:
    wire = await ctx.app[SHOP].order_dict(order, ctx.now)
    return to_identity(ctx.room, ctx.identity, names.ORDER_UPDATED, {"order": wire})


def setup(app: web.Application) -> None:
    dispatcher = app[DISPATCHER]
    dispatcher.add("slot:pin", on_slot_pin, role=Role.MODERATOR, module="shop")
    dispatcher.add("slot:unpin", on_slot_unpin, role=Role.MODERATOR, module="shop")
    dispatcher.add("drop:schedule", on_drop_schedule, role=Role.MODERATOR, module="shop")
    dispatcher.add("drop:restock", on_drop_restock, role=Role.HOST, module="shop")
    dispatcher.add("cart:add", on_cart_add, role=Role.LISTENER, module="shop")
    dispatcher.add("cart:remove", on_cart_remove, role=Role.LISTENER, module="shop")
    dispatcher.add("cart:get", on_cart_get, role=Role.LISTENER, module="shop")
    dispatcher.add("checkout:start", on_checkout_start, role=Role.LISTENER, module="shop")
    dispatcher.add("buy:now", on_buy_now, role=Role.LISTENER, module="shop")
    dispatcher.add("order:cancel", on_order_cancel, role=Role.LISTENER, module="shop")
