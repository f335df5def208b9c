"""The names of the events the shop sends (docs/protocol.md describes their
payloads). Every module of commerce/ and server/ sends and compares these,
never a literal. Pure: no imports of ours.
"""

from typing import Final

CART_UPDATED: Final = "cart:updated"  # to the buyer: their cart, and why it changed
ORDER_UPDATED: Final = "order:updated"  # to the buyer: one of their orders
ORDER_FEED: Final = "order:feed"  # to the room's staff: a line of the live sales feed
DROP_UPDATED: Final = "drop:updated"  # to the room: a drop's state and stock
SLOT_UPDATED: Final = "slot:updated"  # to the room: a buy slot and its stock
PRODUCT_UPDATED: Final = "product:updated"  # to the rooms showing it: a product (its audio)
TONE_PLAYING: Final = "tone:playing"  # to the room: a product's preview plays in the mix
TONE_STOPPED: Final = "tone:stopped"  # to the room: it ended or was stopped
