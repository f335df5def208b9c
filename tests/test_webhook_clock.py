"""A webhook's signature is checked against the clock the server hands in
(`now`), not one the Stripe SDK reads by itself: a signature made more than
WEBHOOK_TOLERANCE_S before `now` is refused, a recent one accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest

from commerce.stripe_gateway import WEBHOOK_TOLERANCE_S, StripeGateway
from kernel.errors import Invalid

SECRET = "whsec_test"
SIGNED = 1_000_000  # long ago on the wall clock: only `now` may judge it
PAYLOAD = json.dumps({"id": "evt_1", "type": "x", "data": {"object": {}}}).encode()


def _signature(at: int, payload: bytes = PAYLOAD) -> str:
    mac = hmac.new(SECRET.encode(), f"{at}.{payload.decode()}".encode(), hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"


@pytest.fixture
async def gateway() -> AsyncIterator[StripeGateway]:
    gw = StripeGateway("sk_test_x", SECRET, "pk_test_x")
    yield gw
    await gw.close()


async def test_a_recent_signature_is_accepted_on_the_given_clock(gateway: StripeGateway) -> None:
    event = gateway.parse_event(PAYLOAD, _signature(SIGNED), SIGNED + WEBHOOK_TOLERANCE_S)
    assert (event.id, event.type) == ("evt_1", "x")


async def test_an_old_signature_is_refused_on_the_given_clock(gateway: StripeGateway) -> None:
    with pytest.raises(Invalid, match="bad webhook signature"):
        gateway.parse_event(PAYLOAD, _signature(SIGNED), SIGNED + WEBHOOK_TOLERANCE_S + 1)


async def test_a_wrong_signature_is_refused(gateway: StripeGateway) -> None:
    with pytest.raises(Invalid, match="bad webhook signature"):
        gateway.parse_event(PAYLOAD, _signature(SIGNED, b"{}"), SIGNED)
