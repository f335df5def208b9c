"""`commerce.payment.decide`: every (order, intent, now) the callers meet, as a
table; plus the intent parser, the backoff and the idempotency keys. Pure and
fast: no Redis, no Stripe."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from commerce.orders import Order, OrderLine, OrderStatus
from commerce.payment import (
    Action,
    Intent,
    IntentStatus,
    backoff_s,
    decide,
    idempotency_key,
    intent_from,
    is_ours,
    marker,
)
from kernel.errors import Invalid

NOW = 1000.0
LINE = OrderLine("d.drop_1", "tee", "drop_1", "Tee", 1, 2500)
ORDER = Order(
    id="ord_1",
    room="r",
    identity="ann",
    status=OrderStatus.PENDING,
    lines=(LINE,),
    total=2500,
    currency="eur",
    created_at=900.0,
    hold_until=1900.0,
    payment_ref="pi_2",
    payment_refs=("pi_1", "pi_2"),
)
MARK = marker("ord_1", "r", "ann")
WAVE1 = {"order_id": "ord_1", "room": "r", "identity": "ann"}


def pi(status: IntentStatus, ref: str = "pi_2", **kw: Any) -> Intent:
    fields: dict[str, Any] = {"amount": 2500, "currency": "eur", "metadata": MARK}
    fields.update(kw)
    return Intent(ref, status, client_secret=None, **fields)


S = IntentStatus
PENDING, PAID = ORDER, replace(ORDER, status=OrderStatus.PAID)
FAILED_ORDER = replace(ORDER, status=OrderStatus.FAILED, reason="hold_expired")
DECLINED_ONCE = replace(ORDER, declined=("pi_1",))
DECLINED_TWICE = replace(ORDER, payment_refs=("pi_0", "pi_1", "pi_2"), declined=("pi_0", "pi_1"))
WAVE1_ORDER = replace(ORDER, payment_refs=())

TABLE: list[tuple[str, Order, Intent | None, float, Action, str | None]] = [
    ("paid in time", PENDING, pi(S.SUCCEEDED), NOW, Action.PAY, None),
    ("paid after the hold ended", PENDING, pi(S.SUCCEEDED), 5000, Action.PAY, None),
    ("paid after it failed: refund", FAILED_ORDER, pi(S.SUCCEEDED), NOW, Action.PAY, None),
    ("paid twice: nothing", PAID, pi(S.SUCCEEDED), NOW, Action.IGNORE, None),
    ("other amount", PENDING, pi(S.SUCCEEDED, amount=999), NOW, Action.MISMATCH, "amount_mismatch"),
    ("other currency", PENDING, pi(S.SUCCEEDED, currency="usd"), NOW, Action.MISMATCH,
     "amount_mismatch"),
    ("mismatch again after failing", replace(FAILED_ORDER, reason="amount_mismatch"),
     pi(S.SUCCEEDED, amount=1), NOW, Action.MISMATCH, "amount_mismatch"),
    ("replaced intent took money", PENDING, pi(S.SUCCEEDED, "pi_1"), NOW, Action.REFUND,
     "replaced_intent"),
    ("replaced intent, order paid", PAID, pi(S.SUCCEEDED, "pi_1"), NOW, Action.REFUND,
     "replaced_intent"),
    ("foreign intent naming our order", PENDING, pi(S.SUCCEEDED, "pi_x"), NOW, Action.IGNORE,
     None),
    ("our intent, wrong room", PENDING, pi(S.SUCCEEDED, metadata={**MARK, "room": "q"}), NOW,
     Action.IGNORE, None),
    ("our intent, wrong marker", PENDING,
     pi(S.SUCCEEDED, metadata={**MARK, "droproom_order": "ord_9"}), NOW, Action.IGNORE, None),
    ("no metadata", PENDING, pi(S.SUCCEEDED, metadata={}), NOW, Action.IGNORE, None),
    ("wave 1 intent of a wave 1 order", WAVE1_ORDER, pi(S.SUCCEEDED, metadata=WAVE1), NOW,
     Action.PAY, None),
    ("processing", PENDING, pi(S.PROCESSING), NOW, Action.WAIT, None),
    ("3-D Secure", PENDING, pi(S.REQUIRES_ACTION), NOW, Action.WAIT, None),
    ("to confirm", PENDING, pi(S.REQUIRES_CONFIRMATION), NOW, Action.WAIT, None),
    ("no card yet", PENDING, pi(S.REQUIRES_PAYMENT_METHOD), NOW, Action.WAIT, None),
    ("declined", PENDING, pi(S.REQUIRES_PAYMENT_METHOD, error="card_declined"), NOW,
     Action.DECLINE, "payment_failed"),
    ("declined, last of 3", DECLINED_TWICE, pi(S.REQUIRES_PAYMENT_METHOD, error="x"), NOW,
     Action.FAIL, "payment_failed"),
    ("declined, 2 of 5", replace(DECLINED_TWICE, max_attempts=5),
     pi(S.REQUIRES_PAYMENT_METHOD, error="x"), NOW, Action.DECLINE, "payment_failed"),
    ("a decline already counted", replace(ORDER, declined=("pi_2",)), pi(S.CANCELED), NOW,
     Action.WAIT, None),
    ("cancelled elsewhere", PENDING, pi(S.CANCELED), NOW, Action.FAIL, "payment_canceled"),
    ("late report on a replaced intent", DECLINED_ONCE, pi(S.REQUIRES_PAYMENT_METHOD, "pi_1",
     error="x"), NOW, Action.IGNORE, None),
    ("hold ended, processing", PENDING, pi(S.PROCESSING), 1900.0, Action.FAIL, "hold_expired"),
    ("hold ended, no intent", replace(ORDER, payment_ref=None, payment_refs=()), None, 2000,
     Action.FAIL, "hold_expired"),
    ("no intent yet", replace(ORDER, payment_ref=None, payment_refs=()), None, NOW, Action.WAIT,
     None),
    ("failed order, late decline", FAILED_ORDER, pi(S.REQUIRES_PAYMENT_METHOD, error="x"), NOW,
     Action.IGNORE, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("order", "intent", "now", "action", "reason"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_decide(
    order: Order, intent: Intent | None, now: float, action: Action, reason: str | None
) -> None:
    decision = decide(order, intent, now)
    assert (decision.action, decision.reason) == (action, reason)


def test_ownership_needs_the_history_and_the_metadata() -> None:
    assert is_ours(ORDER, pi(S.SUCCEEDED, "pi_1"))
    assert not is_ours(ORDER, pi(S.SUCCEEDED, "pi_3"))
    assert not is_ours(replace(ORDER, room="other"), pi(S.SUCCEEDED))


BASE = {"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 5}
BAD: list[Any] = [
    ["a list"],
    {**BASE, "amount": "NaN"},
    {**BASE, "amount": 1.5},
    {**BASE, "amount": True},
    {**BASE, "amount": -1},
    {k: v for k, v in BASE.items() if k != "status"},
    {**BASE, "status": "exploded"},
    {**BASE, "currency": "eur", "metadata": ["x"]},
    {**BASE, "currency": "eur", "id": 7},
    {**BASE, "currency": "eur", "last_payment_error": "boom"},
]


@pytest.mark.parametrize("obj", BAD, ids=[str(i) for i in range(len(BAD))])
def test_malformed_intents_are_refused(obj: Any) -> None:
    with pytest.raises(Invalid):
        intent_from(obj)


def test_a_decline_is_read() -> None:
    obj = {**BASE, "currency": "EUR", "status": "requires_payment_method"}
    intent = intent_from({**obj, "last_payment_error": {"code": "card_declined"}})
    assert intent.declined and intent.currency == "eur" and intent.error == "card_declined"
    assert not intent_from(obj).declined


def test_backoff_grows_then_stops() -> None:
    waits = [backoff_s(n) for n in range(12)]
    assert waits == sorted(waits) and waits[0] >= 30 and waits[-1] == 3600


def test_idempotency_keys_change_with_every_parameter() -> None:
    base = ("ord_1", 2500, "eur", "pm_card_visa", 0)
    key = idempotency_key(*base)
    assert key == idempotency_key(*base)
    changed = [
        ("ord_2", 2500, "eur", "pm_card_visa", 0),
        ("ord_1", 2600, "eur", "pm_card_visa", 0),
        ("ord_1", 2500, "usd", "pm_card_visa", 0),
        ("ord_1", 2500, "eur", "pm_other", 0),
        ("ord_1", 2500, "eur", None, 0),
        ("ord_1", 2500, "eur", "pm_card_visa", 1),
    ]
    keys = {idempotency_key(*args) for args in changed}
    assert key not in keys and len(keys) == len(changed)
    assert all(len(k) <= 255 for k in keys)
