"""What each PaymentIntent status means, decided once in commerce.payment
(checkout and settlement ask these predicates): the whole table."""

from __future__ import annotations

import pytest

from commerce.orders import Order, OrderStatus
from commerce.payment import Intent, IntentStatus, needs_card, needs_new_intent

S = IntentStatus
# status -> (final, stopped, needs_card, needs_new_intent) for an intent not declined by us
TABLE = {
    S.SUCCEEDED: (True, False, False, False),
    S.CANCELED: (True, True, False, True),
    S.REQUIRES_PAYMENT_METHOD: (False, True, True, False),
    S.REQUIRES_CONFIRMATION: (False, False, True, False),
    S.REQUIRES_ACTION: (False, False, False, False),
    S.PROCESSING: (False, False, False, False),
    S.REQUIRES_CAPTURE: (False, False, False, False),
}


def _order(declined: tuple[str, ...] = ()) -> Order:
    return Order(
        id="ord_1",
        room="r1",
        identity="alice",
        status=OrderStatus.PENDING,
        lines=(),
        total=2500,
        currency="eur",
        created_at=0.0,
        hold_until=900.0,
        payment_ref="pi_1",
        declined=declined,
    )


def test_the_table_covers_every_status() -> None:
    assert set(TABLE) == set(IntentStatus)


@pytest.mark.parametrize("status", list(IntentStatus))
def test_what_a_status_means(status: IntentStatus) -> None:
    intent = Intent("pi_1", status, 2500, "eur", None)
    got = (intent.final, intent.stopped, needs_card(_order(), intent))
    assert (*got, needs_new_intent(_order(), intent)) == TABLE[status]
    # An intent we declined (and cancelled) takes no card: always another intent.
    assert needs_new_intent(_order(("pi_1",)), intent) and needs_card(_order(("pi_1",)), intent)
