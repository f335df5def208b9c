"""Redis key names of the shop, each defined once with its shape.

Everything a room's buyers touch lives under the room's hash tag
`{room:<id>}` so every reservation, checkout and settlement script of that
room runs in one Cluster slot, plain products included: a room sells a
product from its share (`{room:<id>}:stock:<product>`), filled from and given
back to the product's pool (`{product:<id>}`) in idempotent single-slot
moves (commerce.shares). Only the catalog and small global indexes (`{shop}`,
read outside scripts) live elsewhere. Must not import anything but the
standard library.
"""

# {product:<id>}                  HASH  data (product msgpack), tracked (0/1), price,
#                                        currency, product_id, given, left, held, sold:
#                                        the pool (units no room holds; wave 1 sales)
# {product:<id>}:rooms            SET   rooms that hold a share of the product
# {product:<id>}:moves            HASH  move id -> JSON {to, field, n}: units taken out of
#                                        the pool, not yet known to be in the room's share
# {product:<id>}:moves:in         ZSET  move id applied to the pool, by when (dedup, 1 day)
# {room:<id>}:stock:<product>     HASH  the room's share: product_id, price, currency,
#                                        tracked, given, left, held, sold
# {room:<id>}:stock:<product>:buyers  HASH identity -> units (plain products: no limit)
# {room:<id>}:moves               HASH  move id -> JSON {to, field, n}: units taken out
#                                        of a share on their way back to the pool
# {room:<id>}:moves:in            ZSET  move id applied to a share of the room, by when
# {room:<id>}:slots               HASH  slot number -> JSON {product_id, note}
# {room:<id>}:drops               ZSET  drop id by starts_at
# {room:<id>}:drops:due           ZSET  drop id by the next time its state may change
# {room:<id>}:drop:<drop>         HASH  product_id, price, currency, starts_at, ends_at,
#                                        limit, announced, given, left, held, sold, tracked
# {room:<id>}:drop:<drop>:buyers  HASH  identity -> units held, pending or paid
# {room:<id>}:cart:<identity>     HASH  v, cart_id, currency, expires_at, line:<line_id> -> JSON
# {room:<id>}:carts:expiry        ZSET  identity by the cart's expires_at
# {room:<id>}:order:<order>       HASH  the order (see commerce.orders)
# {room:<id>}:orders:holds        ZSET  pending order id by hold_until
# {room:<id>}:orders:created      ZSET  pending order id by created_at (reconciler)
# {room:<id>}:orders:refund_due   ZSET  order id owing a refund, by when it was found
#                                        (wave 2: then pushed back per reconciler check,
#                                        score = next check - reconcile_after_s)
# {room:<id>}:refunds:due         ZSET  "<order_id> <intent_id>": an intent of ours that
#                                        owes its money back (amount mismatch, replaced),
#                                        by when to try (backoff per order)
# {room:<id>}:order:<order>:paying STRING a checkout confirming the order's card (short TTL)
# {room:<id>}:orders:verify       ZSET  failed order whose intent could not be cancelled,
#                                        by when: the reconciler asks Stripe again
# {room:<id>}:buyer:<identity>:pending   STRING the buyer's pending order id
# {room:<id>}:buyer:<identity>:orders    ZSET  the buyer's order ids by created_at
# {room:<id>}:buyer:<identity>:library   ZSET  the buyer's orders holding files, by paid_at
#                                        (added at the paid transition, removed at a refund)
# {room:<id>}:delivery_ms         LIST  ms from paid to links issued, newest first (capped)
# {room:<id>}:log / :log:head     the rooms foundation's hash-chained event log
# {shop}:rooms                    SET   rooms with shop state (the jobs walk these)
# {shop}:webhook:<event_id>       STRING processed Stripe event (TTL WEBHOOK_SEEN_TTL_S)
# {shop}:moves                    SET   outbox keys that may hold unfinished moves
# {shop}:webhook:bad:<event_id>   STRING a signed but malformed event, logged once (same TTL)

WEBHOOK_SEEN_TTL_S = 7 * 24 * 3600
SHOP_ROOMS = "{shop}:rooms"
SHOP_MOVES = "{shop}:moves"


def product(product_id: str) -> str:
    return f"{{product:{product_id}}}"


# SET ids of the products a creator owns (kernel.owners; written after the product)
def owned_products(owner: str) -> str:
    return "{owner:" + owner + "}:products"


def product_rooms(product_id: str) -> str:
    return f"{product(product_id)}:rooms"


def product_moves(product_id: str) -> str:
    return f"{product(product_id)}:moves"


def product_moves_in(product_id: str) -> str:
    return f"{product(product_id)}:moves:in"


def share(room: str, product_id: str) -> str:
    return f"{room_tag(room)}:stock:{product_id}"


def share_buyers(room: str, product_id: str) -> str:
    return f"{share(room, product_id)}:buyers"


def room_moves(room: str) -> str:
    return f"{room_tag(room)}:moves"


def room_moves_in(room: str) -> str:
    return f"{room_tag(room)}:moves:in"


def room_tag(room: str) -> str:
    return f"{{room:{room}}}"


def slots(room: str) -> str:
    return f"{room_tag(room)}:slots"


def drops(room: str) -> str:
    return f"{room_tag(room)}:drops"


def drops_due(room: str) -> str:
    return f"{room_tag(room)}:drops:due"


def drop(room: str, drop_id: str) -> str:
    return f"{room_tag(room)}:drop:{drop_id}"


def drop_buyers(room: str, drop_id: str) -> str:
    return f"{room_tag(room)}:drop:{drop_id}:buyers"


def cart(room: str, identity: str) -> str:
    return f"{room_tag(room)}:cart:{identity}"


def carts_expiry(room: str) -> str:
    return f"{room_tag(room)}:carts:expiry"


def order(room: str, order_id: str) -> str:
    return f"{room_tag(room)}:order:{order_id}"


def orders_holds(room: str) -> str:
    return f"{room_tag(room)}:orders:holds"


def orders_created(room: str) -> str:
    return f"{room_tag(room)}:orders:created"


def orders_refund_due(room: str) -> str:
    return f"{room_tag(room)}:orders:refund_due"


def refunds_due(room: str) -> str:
    return f"{room_tag(room)}:refunds:due"


def order_paying(room: str, order_id: str) -> str:
    return f"{room_tag(room)}:order:{order_id}:paying"


def orders_verify(room: str) -> str:
    return f"{room_tag(room)}:orders:verify"


def buyer_pending(room: str, identity: str) -> str:
    return f"{room_tag(room)}:buyer:{identity}:pending"


def buyer_orders(room: str, identity: str) -> str:
    return f"{room_tag(room)}:buyer:{identity}:orders"


def buyer_library(room: str, identity: str) -> str:
    return f"{room_tag(room)}:buyer:{identity}:library"


def delivery_ms(room: str) -> str:
    return f"{room_tag(room)}:delivery_ms"


def log(room: str) -> str:
    return f"{room_tag(room)}:log"


def log_head(room: str) -> str:
    return f"{room_tag(room)}:log:head"


def webhook_seen(event_id: str) -> str:
    return f"{{shop}}:webhook:{event_id}"


def webhook_bad(event_id: str) -> str:
    return f"{{shop}}:webhook:bad:{event_id}"


# {buyer:<identity>}:rooms        SET   rooms where the buyer has placed an order (written
#                                        before the order exists, so a paid order is never
#                                        missing from it): /me/orders and /me/library walk it
def buyer_rooms(identity: str) -> str:
    return f"{{buyer:{identity}}}:rooms"


# {product:<id>}:shown            SET   rooms that pinned the product in a slot or scheduled a
#                                        drop of it (never pruned: a room that no longer shows
#                                        it ignores a `product:updated` about it)
# {shop}:tones:jobs               HASH  tone job id -> JSON commerce.tone_jobs.ToneJob: an
#                                        upload being processed, until it ends
# {shop}:tones:leases             ZSET  tone job id by the end of its runner's lease (unix s):
#                                        a job whose lease ended is taken up again
# {shop}:tones:owners             HASH  tone job id -> the token of the process running it
TONE_JOBS = "{shop}:tones:jobs"
TONE_LEASES = "{shop}:tones:leases"
TONE_OWNERS = "{shop}:tones:owners"


def product_shown(product_id: str) -> str:
    return f"{product(product_id)}:shown"


# {buyer:<acct>}:stripe           HASH  the account's Stripe customer: customer (cus_...),
#                                        pm (the saved PaymentMethod), brand, last4
def buyer_stripe(identity: str) -> str:
    return f"{{buyer:{identity}}}:stripe"


# {buyer:<guest>}:claim           STRING the account that claimed this guest identity
#                                        (set once: a guest identity is claimed once)
def buyer_claim(identity: str) -> str:
    return f"{{buyer:{identity}}}:claim"


# The event numbers (commerce.stats), counted by the order scripts as things happen:
# {room:<id>}:orders:all          ZSET  every order id of the room by created_at (written at
#                                        freeze and buy:now: the order list's index)
# {room:<id>}:stats:orders        HASH  paid, failed, refunded, refunded_paid (refunds of paid
#                                        orders), revenue:<CUR>, refunds:<CUR> (minor units)
# {room:<id>}:stats:paid          HASH  minute start (unix s) -> orders paid in that minute
# {room:<id>}:stats:buyers        HYPERLOGLOG identities that paid an order
# {room:<id>}:drop:<drop> gains `sold_out_at`: the first time no unit was left
def orders_all(room: str) -> str:
    return f"{room_tag(room)}:orders:all"


def stats_orders(room: str) -> str:
    return f"{room_tag(room)}:stats:orders"


def stats_paid(room: str) -> str:
    return f"{room_tag(room)}:stats:paid"


def stats_buyers(room: str) -> str:
    return f"{room_tag(room)}:stats:buyers"


# {room:<id>}:tone                STRING JSON {product_id, ends_at}: the product's preview
#                                        playing in the room's mix, set by the process that
#                                        mixes the room; expires when the tone ends
def tone(room: str) -> str:
    return f"{room_tag(room)}:tone"
