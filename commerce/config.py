"""The shop's settings and their defaults, written once: server/config.py
reads its defaults (and the environment's fallbacks) from here, docs/shop.md
and the README quote them. Pure: no imports of ours.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShopConfig:
    cart_ttl_s: int = 600  # a cart's hold on its units, from its last change
    checkout_hold_s: int = 900  # a pending order's hold on its units
    reconcile_after_s: int = 180  # a pending order's age before the reconciler asks Stripe
    decline_hold_s: int = 120  # after a declined card the hold ends at most this far ahead
    max_attempts: int = 3  # declined cards before the order fails


SHOP_DEFAULTS = ShopConfig()
