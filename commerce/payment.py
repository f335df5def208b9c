"""What a payment fact means for an order: decided once, here.

The intent's status as an enum, the facts about one PaymentIntent as a value,
and `decide(order, intent, now)`: a pure function returning the action every
caller (webhook, checkout, reconciler, hold sweeper, buyer's cancel) takes.
Also the backoff of scheduled Stripe calls and the idempotency key of an
intent creation. Pure: no Redis, no clock, no SDK. Must not import aiohttp,
socketio or stripe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from commerce.orders import Order, OrderStatus, Reason
from kernel.errors import Invalid

# Metadata keys droproom writes on every intent it creates; `order_id` and
# `room` are written too (and are all a wave 1 intent carries).
MARK_ORDER = "droproom_order"
MARK_ROOM = "droproom_room"
MAX_ATTEMPTS = 3  # declined cards per order before it fails
DECLINE_HOLD_S = 120.0  # after a decline the hold ends at most this far ahead
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0


class IntentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Intent:
    """What Stripe says about one PaymentIntent."""

    id: str
    status: IntentStatus
    amount: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the last decline's message, if any

    @property
    def declined(self) -> bool:
        return self.status is IntentStatus.REQUIRES_PAYMENT_METHOD and self.error is not None

    @property
    def final(self) -> bool:
        """Stripe moves it no further: nothing left to cancel."""
        return self.status in FINAL

    @property
    def stopped(self) -> bool:
        """No money moves on it unless a new card is given (none is under way)."""
        return self.status in STOPPED


# What an intent's status means, decided here once; checkout, settlement and
# `decide` ask these (and Intent.declined / final / stopped).
FINAL = frozenset({IntentStatus.SUCCEEDED, IntentStatus.CANCELED})
STOPPED = frozenset({IntentStatus.CANCELED, IntentStatus.REQUIRES_PAYMENT_METHOD})
AWAITS_CARD = frozenset({IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_CONFIRMATION})


def needs_card(order: Order, intent: Intent) -> bool:
    """A card may (and must) be given to pay the order on this intent."""
    return intent.id in order.declined or intent.status in AWAITS_CARD


def needs_new_intent(order: Order, intent: Intent) -> bool:
    """The intent can take no card any more (we declined-and-cancelled it, or
    it was cancelled): another intent must take its place."""
    return intent.id in order.declined or intent.status is IntentStatus.CANCELED


def _text(obj: Mapping[str, Any], name: str, optional: bool = False) -> str | None:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 500:
        raise Invalid(f"payment intent field {name} is missing or not text")
    return value


def intent_from(obj: Any) -> Intent:
    """An intent read from Stripe's JSON; `Invalid` when it is malformed."""
    if not isinstance(obj, Mapping):
        raise Invalid("payment intent is not an object")
    amount, metadata = obj.get("amount"), obj.get("metadata") or {}
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise Invalid("payment intent amount is not a whole number")
    if not isinstance(metadata, Mapping):
        raise Invalid("payment intent metadata is not an object")
    try:
        status = IntentStatus(str(_text(obj, "status")))
    except ValueError as exc:
        raise Invalid("payment intent status is unknown") from exc
    err = obj.get("last_payment_error") or {}
    if not isinstance(err, Mapping):
        raise Invalid("payment intent last_payment_error is not an object")
    return Intent(
        id=str(_text(obj, "id")),
        status=status,
        amount=amount,
        currency=str(_text(obj, "currency")).lower(),
        client_secret=_text(obj, "client_secret", optional=True),
        metadata={str(k): str(v) for k, v in metadata.items()},
        error=(err.get("message") or err.get("code") or "declined") if err else None,
    )


def marker(order_id: str, room: str, identity: str) -> dict[str, str]:
    """The metadata of an intent droproom creates."""
    return {MARK_ORDER: order_id, MARK_ROOM: room, "order_id": order_id, "room": room,
            "identity": identity}  # fmt: skip


def claimed_order(intent: Intent) -> tuple[str, str] | None:
    """(room, order id) the intent's metadata names, if it names one consistently."""
    md = intent.metadata
    rooms = {md[k] for k in (MARK_ROOM, "room") if md.get(k)}
    orders = {md[k] for k in (MARK_ORDER, "order_id") if md.get(k)}
    if len(rooms) != 1 or len(orders) != 1:
        return None
    return rooms.pop(), orders.pop()


def is_ours(order: Order, intent: Intent) -> bool:
    """Created by droproom for this order: the metadata names it and the
    order's history holds the intent (a wave 1 intent, without our own keys,
    qualifies by the history alone)."""
    return claimed_order(intent) == (order.room, order.id) and intent.id in order.refs


class Action(StrEnum):
    IGNORE = "ignore"  # not ours, or nothing left to do
    WAIT = "wait"  # still under way: ask again later
    PAY = "pay"  # the order is paid (a failed one owes its refund)
    FAIL = "fail"  # the order fails (reason), its intent is cancelled
    DECLINE = "decline"  # a card was declined: record it, keep the order open
    MISMATCH = "mismatch"  # paid another amount: fail the order, refund the intent
    REFUND = "refund"  # an intent of ours the order no longer uses took money


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str | None = None


IGNORE = Decision(Action.IGNORE)
WAIT = Decision(Action.WAIT)


def decide(order: Order, intent: Intent | None, now: float) -> Decision:
    """The one answer to "what does this payment fact do to this order"."""
    if intent is not None and not is_ours(order, intent):
        return IGNORE
    if intent is not None and intent.status is IntentStatus.SUCCEEDED:
        return _succeeded(order, intent)
    pending = order.status is OrderStatus.PENDING
    if not pending or (intent is not None and intent.id != order.payment_ref):
        return IGNORE  # a settled order, or a report about a replaced intent
    if now >= order.hold_until:
        return Decision(Action.FAIL, Reason.HOLD_EXPIRED)
    if intent is None or intent.id in order.declined:
        return WAIT  # no intent yet, or a decline already counted (and cancelled)
    if intent.status is IntentStatus.CANCELED:
        return Decision(Action.FAIL, Reason.CANCELED)
    if intent.declined:
        if order.declines + 1 >= order.max_attempts:
            return Decision(Action.FAIL, Reason.DECLINED)
        return Decision(Action.DECLINE, Reason.DECLINED)
    return WAIT


def _succeeded(order: Order, intent: Intent) -> Decision:
    if (intent.amount, intent.currency) != (order.total, order.currency):
        return Decision(Action.MISMATCH, Reason.AMOUNT_MISMATCH)
    if intent.id != order.payment_ref:
        return Decision(Action.REFUND, Reason.REPLACED)
    if order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        return Decision(Action.PAY)
    return IGNORE


def backoff_s(checks: int) -> float:
    """How long to wait before asking Stripe about an order again."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(checks, 20)))


def idempotency_key(
    order_id: str, amount: int, currency: str, payment_method: str | None, attempt: int
) -> str:
    """New whenever a parameter changes: Stripe answers a reused key with the
    first request's (cached) result, errors included."""
    raw = f"{order_id}|{amount}|{currency}|{payment_method or ''}|{attempt}"
    return f"pi-{order_id}-{hashlib.sha256(raw.encode()).hexdigest()[:24]}"
