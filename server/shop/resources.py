"""The shop's long-lived resources: the `Shop` (commerce over our Redis) and
its Stripe client, opened and closed as a pair in `shop_ctx`; with no Stripe
keys set, the embedded localstripe is started and its webhook registered.

Must not import `stripe` (commerce.stripe_gateway does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from commerce.shop import Shop, ShopConfig
from commerce.stripe_gateway import StripeGateway
from server.appkeys import DOWNLOADS, REDIS, SETTINGS, SIO
from server.config import Settings
from server.embedded.stripe_embed import EmbeddedStripe
from server.shop.broadcast import BROADCAST, StockBroadcast

WEBHOOK_PATH = "/api/v1/stripe/webhook"

SHOP: web.AppKey[Shop] = web.AppKey("shop", Shop)
STRIPE_EMBED: web.AppKey[EmbeddedStripe | None] = web.AppKey("stripe_embed")


async def _gateway(app: web.Application, settings: Settings) -> StripeGateway:
    if settings.stripe_secret_key:
        if not settings.stripe_webhook_secret:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
        app[STRIPE_EMBED] = None
        return StripeGateway(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            settings.stripe_publishable_key or "",
            settings.stripe_api_base,
        )
    embedded = EmbeddedStripe(settings.data_dir)
    app[STRIPE_EMBED] = embedded
    found = await embedded.start()
    await embedded.register_webhook(settings.public_url + WEBHOOK_PATH)
    return StripeGateway(
        found.secret_key, found.webhook_secret, found.publishable_key, found.api_base
    )


def stripe_js_url(app: web.Application) -> str:
    embedded = app.get(STRIPE_EMBED)
    if embedded is not None:
        return embedded.keys.js_url
    return app[SETTINGS].stripe_js_url or "https://js.stripe.com/v3/"


async def shop_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    gateway = await _gateway(app, settings)
    config = ShopConfig(
        settings.cart_ttl_s,
        settings.checkout_hold_s,
        settings.reconcile_after_s,
        settings.checkout_decline_hold_s,
        settings.checkout_max_attempts,
    )
    app[SHOP] = Shop(app[REDIS], gateway, config, app[DOWNLOADS])  # server.files opened it
    # One process (the local manager) knows everything its rooms heard.
    app[BROADCAST] = StockBroadcast(dedupe=type(app[SIO].manager) is socketio.AsyncManager)
    try:
        yield
    finally:
        await gateway.close()
        embedded = app.get(STRIPE_EMBED)
        if embedded is not None:
            await embedded.stop()
