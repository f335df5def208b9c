"""The one module that imports the Stripe SDK.

Narrow async functions over `stripe.StripeClient` (its `*_async` methods on
the SDK's aiohttp client, so the loop never blocks), returning our own
values and raising our own errors. Works the same against real Stripe and the
embedded localstripe (whose quirks it avoids: the payment method is set on
create or update, never passed to confirm; no `automatic_payment_methods`,
`description` or `receipt_email`). Must not import aiohttp, socketio or rooms.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from commerce.payment import Intent, intent_from
from kernel.errors import DomainError, Invalid, PaymentFailed, Unavailable

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_S = 300  # Stripe's own default


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified webhook event."""

    id: str
    type: str
    object: Any  # as sent: checked by `intent()`

    def intent(self) -> Intent | None:
        """The event's PaymentIntent; `Invalid` when it is malformed."""
        if not isinstance(self.object, Mapping):
            raise Invalid("the event's object is not an object")
        if self.object.get("object") != "payment_intent":
            return None
        return intent_from(self.object)


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A PaymentMethod attached to a Customer: what the buyer sees of it."""

    id: str
    brand: str
    last4: str


def _intent(pi: stripe.PaymentIntent) -> Intent:
    return intent_from(pi.to_dict())


def _ours(exc: stripe.StripeError) -> DomainError:
    if isinstance(exc, stripe.CardError):
        return PaymentFailed(exc.user_message or "the card was declined")
    if isinstance(exc, stripe.InvalidRequestError):
        return Invalid(exc.user_message or "the payment request was refused")
    return Unavailable("the payment service is not answering")


class StripeGateway:
    """Stripe for the shop. Opened and closed as a pair (`close()`)."""

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        publishable_key: str,
        api_base: str | None = None,
    ) -> None:
        self._http = stripe.AIOHTTPClient()
        addresses: dict[str, str] = {"api": api_base} if api_base else {}
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=addresses,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=1,
        )
        self._webhook_secret = webhook_secret
        self.publishable_key = publishable_key
        self.calls: Counter[str] = Counter()  # Stripe API calls made, by kind

    async def close(self) -> None:
        await self._http.close_async()

    async def create_intent(
        self,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
        customer: str | None = None,
    ) -> Intent:
        params: dict[str, Any] = {"amount": amount, "currency": currency, "metadata": metadata}
        params["payment_method_types"] = ["card"]
        if payment_method:
            params["payment_method"] = payment_method
        if customer:
            params["customer"] = customer
        self.calls["create"] += 1
        try:
            pi = await self._client.v1.payment_intents.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("stripe create intent (%s) failed: %s", idempotency_key, exc)
            raise _ours(exc) from exc
        return _intent(pi)

    async def create_customer(
        self, email: str | None, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        """A Customer (a signed-in buyer's, with their email when known)."""
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        self.calls["customer"] += 1
        try:
            customer = await self._client.v1.customers.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("stripe create customer (%s) failed: %s", idempotency_key, exc)
            raise _ours(exc) from exc
        return str(customer.id)

    async def attach(self, payment_method: str, customer: str) -> SavedMethod:
        """Attach a PaymentMethod to a Customer (how a card is saved: the
        stand-in refuses `setup_future_usage`). A declined card is
        `PaymentFailed`. Stripe may answer another id for a test method
        (`pm_card_visa`): the answer's id is the saved one."""
        self.calls["attach"] += 1
        try:
            pm = await self._client.v1.payment_methods.attach_async(
                payment_method, params={"customer": customer}
            )
        except stripe.StripeError as exc:
            logger.info("stripe attach to %s failed: %s", customer, exc)
            raise _ours(exc) from exc
        card = pm.to_dict().get("card") or {}
        return SavedMethod(str(pm.id), str(card.get("brand") or ""), str(card.get("last4") or ""))

    async def detach(self, payment_method: str) -> None:
        self.calls["detach"] += 1
        try:
            await self._client.v1.payment_methods.detach_async(payment_method)
        except stripe.StripeError as exc:
            logger.warning("stripe detach %s failed: %s", payment_method, exc)
            raise _ours(exc) from exc

    async def retrieve(self, intent_id: str) -> Intent:
        self.calls["retrieve"] += 1
        try:
            return _intent(await self._client.v1.payment_intents.retrieve_async(intent_id))
        except stripe.StripeError as exc:
            logger.warning("stripe retrieve %s failed: %s", intent_id, exc)
            raise _ours(exc) from exc

    async def confirm(self, intent_id: str, payment_method: str | None = None) -> Intent:
        """Confirm with the payment method set first; a decline is a status, not an error."""
        self.calls["confirm"] += 1
        try:
            if payment_method:
                await self._client.v1.payment_intents.update_async(
                    intent_id, params={"payment_method": payment_method}
                )
            pi = await self._client.v1.payment_intents.confirm_async(intent_id)
        except stripe.CardError as exc:
            logger.info("stripe intent %s declined: %s", intent_id, exc.code)
            return await self.retrieve(intent_id)
        except stripe.StripeError as exc:
            logger.warning("stripe confirm %s failed: %s", intent_id, exc)
            raise _ours(exc) from exc
        return _intent(pi)

    async def cancel(self, intent_id: str) -> Intent | None:
        """Cancel if it can still be cancelled; None if Stripe refuses (e.g. it succeeded)."""
        self.calls["cancel"] += 1
        try:
            return _intent(await self._client.v1.payment_intents.cancel_async(intent_id))
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise _ours(exc) from exc

    async def refund(self, intent_id: str, idempotency_key: str) -> str:
        self.calls["refund"] += 1
        try:
            refund = await self._client.v1.refunds.create_async(
                params={"payment_intent": intent_id},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("stripe refund of %s failed: %s", intent_id, exc)
            raise _ours(exc) from exc
        return str(refund.id)

    def parse_event(self, payload: bytes, signature: str, now: float) -> PaymentEvent:
        """Verify the signature (made at most WEBHOOK_TOLERANCE_S before `now`),
        then read the event; `Invalid` if either fails. The SDK checks only the
        signature (no tolerance: its own check would read the clock)."""
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode(), signature, self._webhook_secret, None
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise Invalid("bad webhook signature") from exc
        if signed_at(signature) < now - WEBHOOK_TOLERANCE_S:
            raise Invalid("bad webhook signature")
        try:
            data = json.loads(payload)
            event_id, kind, obj = data["id"], data["type"], data["data"]["object"]
            if not isinstance(event_id, str) or not isinstance(kind, str):
                raise TypeError("the event's id or type is not text")
            return PaymentEvent(event_id, kind, obj)
        except (ValueError, KeyError, TypeError) as exc:
            raise Invalid("malformed webhook event") from exc


def signed_at(signature: str) -> int:
    """The time a verified `Stripe-Signature` header (`t=...,v1=...`) was made."""
    return int(next(part[2:] for part in signature.split(",") if part.startswith("t=")))
