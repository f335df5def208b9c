"""A signed-in buyer's Stripe Customer and saved card, one per account
(`{buyer:<acct>}:stripe`): the customer is created on the account's first
checkout (with the email of that checkout when given), every intent of the
account carries it, and `save_card` attaches the card to it. Guests get no
Customer (their email stays on their orders). Must not import aiohttp,
socketio or stripe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from commerce import keys
from commerce.buyers import is_account
from commerce.payment import IntentStatus
from commerce.stripe_gateway import SavedMethod, StripeGateway
from kernel.errors import DomainError, Invalid, Unauthorized

logger = logging.getLogger(__name__)

# A card being saved is kept when its payment went through or waits for the
# buyer (3-D Secure); a declined card is detached again.
SAVED_ON = frozenset(
    {
        IntentStatus.SUCCEEDED,
        IntentStatus.PROCESSING,
        IntentStatus.REQUIRES_ACTION,
        IntentStatus.REQUIRES_CAPTURE,
    }
)


@dataclass(frozen=True, slots=True)
class SavedCard:
    """The card an account saved: what `buy:now` pays with."""

    customer: str
    payment_method: str
    brand: str
    last4: str

    def as_dict(self) -> dict[str, str]:
        return {"brand": self.brand, "last4": self.last4}


def check_save_card(identity: str, payment_method: str | None, save_card: bool) -> None:
    """`save_card` is for signed-in buyers paying with a PaymentMethod (a
    `card_` token cannot be attached to a Customer)."""
    if not save_card:
        return
    if not is_account(identity):
        raise Unauthorized("sign in to save a card")
    if payment_method is None or not payment_method.startswith("pm_"):
        raise Invalid("save_card needs a payment_method (pm_...) to save")


class Customers:
    def __init__(self, redis: Any, gateway: StripeGateway) -> None:
        self._redis: Any = redis
        self._gateway = gateway

    async def saved_card(self, identity: str) -> SavedCard | None:
        if not is_account(identity):
            return None
        raw = await self._redis.hgetall(keys.buyer_stripe(identity))
        if not raw.get(b"pm") or not raw.get(b"customer"):
            return None
        return SavedCard(
            raw[b"customer"].decode(),
            raw[b"pm"].decode(),
            raw.get(b"brand", b"").decode(),
            raw.get(b"last4", b"").decode(),
        )

    async def customer_of(self, identity: str, email: str | None) -> str | None:
        """The account's Customer, created on first use; None for guests. Two
        first checkouts at once may both create one: the first kept wins
        (the other stays unused in Stripe)."""
        if not is_account(identity):
            return None
        key = keys.buyer_stripe(identity)
        found = await self._redis.hget(key, "customer")
        if found:
            return str(found.decode())
        created = await self._gateway.create_customer(
            email, {"droproom_account": identity}, f"cus-{identity}"
        )
        if not await self._redis.hsetnx(key, "customer", created):
            return str((await self._redis.hget(key, "customer")).decode())
        logger.info("account %s: stripe customer %s", identity, created)
        return created

    async def attach(self, identity: str, customer: str, payment_method: str) -> SavedMethod:
        """Attach the card to the account's Customer (before it pays, so the
        intent pays with the customer's own method); kept as the saved card
        by `keep` once the payment was not declined."""
        method = await self._gateway.attach(payment_method, customer)
        logger.info("account %s: card %s attached to %s", identity, method.id, customer)
        return method

    async def keep(self, identity: str, customer: str, method: SavedMethod) -> SavedCard:
        mapping = {"pm": method.id, "brand": method.brand, "last4": method.last4}
        await self._redis.hset(keys.buyer_stripe(identity), mapping=mapping)
        return SavedCard(customer, method.id, method.brand, method.last4)

    async def forget_attached(self, method: SavedMethod) -> None:
        """A card attached for saving whose payment was declined: detached."""
        try:
            await self._gateway.detach(method.id)
        except DomainError as exc:
            logger.warning("card %s not detached: %s", method.id, exc)
