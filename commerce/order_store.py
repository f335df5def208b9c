"""Orders in Redis: every status change is one Lua script that checks the
current status first (so each transition happens exactly once however many
webhooks, reconcilers or processes race for it), moves the stock of the
order's lines and appends to the room's hash-chained log.

Transitions: freeze (cart -> pending), paid (pending -> paid, held -> sold;
failed -> refund_due), failed / expire (pending -> failed, held -> left),
refunded (refund_due -> refunded). Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from commerce import keys, lua
from commerce.inventory import StockMove, Target
from commerce.orders import Order, order_from_hash
from commerce.payment import BACKOFF_FIRST_S, BACKOFF_MAX_S, Intent
from kernel.errors import Conflict, NotFound

# KEYS: cart, carts expiry, order, holds, created, pending, log, head, buyer's orders
# ARGV: identity, version, order_id, now, hold_until, lines, total, currency, room,
#       max_attempts
_FREEZE = lua.script("""
local pending = redis.call('GET', KEYS[6])
if pending then return {'pending', pending} end
local c = redis.call('HMGET', KEYS[1], 'v', 'expires_at')
if c[1] ~= ARGV[2] then return {'stale'} end
if tonumber(c[2]) <= tonumber(ARGV[4]) then return {'expired'} end
redis.call('HSET', KEYS[3], 'id', ARGV[3], 'room', ARGV[9], 'identity', ARGV[1],
  'status', 'pending', 'lines', ARGV[6], 'total', ARGV[7], 'currency', ARGV[8],
  'created_at', ARGV[4], 'hold_until', ARGV[5], 'max_attempts', ARGV[10])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[3])
redis.call('SET', KEYS[6], ARGV[3])
redis.call('ZADD', KEYS[9], ARGV[4], ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
log_append(KEYS[7], KEYS[8], 'order.created', cjson.encode({order_id = ARGV[3],
  identity = ARGV[1], lines = cjson.decode(ARGV[6]), total = tonumber(ARGV[7]),
  currency = ARGV[8]}), ARGV[4])
return {'ok'}
""")

# KEYS: order, holds, created, pending, refund_due, log, head, then (stock, buyers) per line
# ARGV: action, now, payment_ref, reason, receipt, refund_ref, then (line_id, drop_id, qty)
_SETTLE = lua.script("""
local action, now = ARGV[1], tonumber(ARGV[2])
local o = redis.call('HMGET', KEYS[1], 'status', 'hold_until', 'id', 'identity')
local st, oid, identity = o[1], o[3], o[4]
if not st then return {'not_found'} end
local function unindex()
  redis.call('ZREM', KEYS[2], oid)
  redis.call('ZREM', KEYS[3], oid)
  if redis.call('GET', KEYS[4]) == oid then redis.call('DEL', KEYS[4]) end
end
local function log(etype, extra)
  extra.order_id = oid
  extra.identity = identity
  log_append(KEYS[6], KEYS[7], etype, cjson.encode(extra), ARGV[2])
end
local n = (#KEYS - 7) / 2
if action == 'paid' then
  if st == 'failed' then
    redis.call('HSET', KEYS[1], 'status', 'refund_due', 'reason', ARGV[4],
               'payment_ref', ARGV[3])
    redis.call('ZADD', KEYS[5], now, oid)
    log('order.refund_due', {payment_ref = ARGV[3], reason = ARGV[4]})
    return {'refund_due'}
  end
  if st ~= 'pending' then return {'noop', st} end
  for i = 1, n do sell_units(KEYS[6 + 2 * i], tonumber(ARGV[6 + 3 * i])) end
  redis.call('HSET', KEYS[1], 'status', 'paid', 'payment_ref', ARGV[3], 'receipt', ARGV[5],
             'paid_at', ARGV[2])
  unindex()
  log('order.paid', {payment_ref = ARGV[3]})
  return {'paid'}
end
if action == 'failed' or action == 'expire' then
  if st ~= 'pending' then return {'noop', st} end
  if action == 'expire' and tonumber(o[2]) > now then return {'noop', st} end
  local out = {'failed'}
  for i = 1, n do
    local stock, drop_id = KEYS[6 + 2 * i], ARGV[5 + 3 * i]
    release_units(stock, KEYS[7 + 2 * i], identity, tonumber(ARGV[6 + 3 * i]))
    local announced = ''
    if drop_id ~= '' then announced = announce(stock, drop_id, now, KEYS[6], KEYS[7]) or '' end
    out[#out + 1] = ARGV[4 + 3 * i]
    out[#out + 1] = left_of(stock)
    out[#out + 1] = announced
  end
  redis.call('HSET', KEYS[1], 'status', 'failed', 'reason', ARGV[4])
  unindex()
  log('order.failed', {reason = ARGV[4]})
  return out
end
if action == 'refunded' then
  if st ~= 'refund_due' then return {'noop', st} end
  redis.call('HSET', KEYS[1], 'status', 'refunded', 'refund_ref', ARGV[6])
  redis.call('ZREM', KEYS[5], oid)
  log('order.refunded', {refund_ref = ARGV[6]})
  return {'refunded'}
end
return {'invalid'}
""")

# KEYS: order   ARGV: token, now, stale_after_s
# Claim the right to create the order's PaymentIntent (one creator at a time;
# a claim older than stale_after_s is taken over, its holder presumed dead).
_CLAIM_INTENT = """
local o = redis.call('HMGET', KEYS[1], 'payment_ref', 'pi_claim', 'pi_claim_at')
if o[1] then return {'has', o[1]} end
if o[2] and tonumber(o[3]) + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return {'busy'} end
redis.call('HSET', KEYS[1], 'pi_claim', ARGV[1], 'pi_claim_at', ARGV[2])
return {'claimed'}
"""

# Appends an intent id to the order's history (`payment_refs`; a wave 1
# order starts it from its `payment_ref`).
_REFS = """
local function add_ref(order_key, ref)
  local refs = redis.call('HGET', order_key, 'payment_refs')
  if not refs then refs = redis.call('HGET', order_key, 'payment_ref') or '' end
  local joined = (refs .. ' ' .. ref):gsub('^ ', '')
  redis.call('HSET', order_key, 'payment_refs', joined)
end
"""

# KEYS: order   ARGV: token, payment_ref, client_secret, status
_SET_INTENT = (
    _REFS
    + """
if redis.call('HGET', KEYS[1], 'payment_ref') then return 0 end
redis.call('HSET', KEYS[1], 'payment_ref', ARGV[2], 'client_secret', ARGV[3], 'pi_status', ARGV[4])
add_ref(KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: order   ARGV: replaced payment_ref, new payment_ref, new client_secret, status
# Another card for a pending order: only from the intent the caller saw.
_REPLACE_INTENT = (
    _REFS
    + """
local o = redis.call('HMGET', KEYS[1], 'status', 'payment_ref')
if o[1] ~= 'pending' or o[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'payment_ref', ARGV[2], 'client_secret', ARGV[3], 'pi_status', ARGV[4])
add_ref(KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: order   ARGV: payment_ref, status  (what the current intent last said)
_NOTE_STATUS = """
if redis.call('HGET', KEYS[1], 'payment_ref') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pi_status', ARGV[2])
return 1
"""

# KEYS: order, holds, log, head
# ARGV: payment_ref, error, now, decline_hold_s, max_attempts
# A declined card: counted once per intent, only for the current intent of a
# pending order; the hold shortens; 'exhausted' when no attempt is left.
_DECLINE = lua.script("""
local o = redis.call('HMGET', KEYS[1], 'status', 'payment_ref', 'declined', 'hold_until', 'id',
  'identity')
if o[1] ~= 'pending' or o[2] ~= ARGV[1] then return {'noop'} end
local declined = o[3] or ''
for ref in declined:gmatch('%S+') do if ref == ARGV[1] then return {'noop'} end end
declined = (declined .. ' ' .. ARGV[1]):gsub('^ ', '')
local n = 0
for _ in declined:gmatch('%S+') do n = n + 1 end
local now = tonumber(ARGV[3])
local hold = math.min(tonumber(o[4]), now + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'declined', declined, 'payment_error', ARGV[2],
  'pi_status', 'requires_payment_method', 'hold_until', tostring(hold))
redis.call('ZADD', KEYS[2], hold, o[5])
log_append(KEYS[3], KEYS[4], 'order.declined', cjson.encode({order_id = o[5], identity = o[6],
  payment_ref = ARGV[1], attempts = n}), ARGV[3])
if n >= tonumber(ARGV[5]) then return {'exhausted'} end
return {'recorded'}
""")

# KEYS: order, refunds due   ARGV: member, payment_ref, now
# An intent of this order owes its money back (once: not if already refunded).
_OWE_REFUND = """
if redis.call('HEXISTS', KEYS[1], 'refund:' .. ARGV[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 1
"""

# KEYS: order, refunds due, log, head   ARGV: member, payment_ref, refund_ref, now
_INTENT_REFUNDED = lua.script("""
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[1], 'refund:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
local o = redis.call('HMGET', KEYS[1], 'id', 'identity')
log_append(KEYS[3], KEYS[4], 'order.intent_refunded', cjson.encode({order_id = o[1],
  identity = o[2], payment_ref = ARGV[2], refund_ref = ARGV[3]}), ARGV[4])
return 1
""")

# KEYS: index, order   ARGV: member, cutoff, now, first_s, max_s, offset
# Claim a scheduled Stripe call about an order (one process at a time) and
# push its next one back, exponentially per order (count in `checks`).
_CLAIM_CHECK = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
local n = 0
if redis.call('EXISTS', KEYS[2]) == 1 then n = redis.call('HINCRBY', KEYS[2], 'checks', 1) end
local delay = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(n, 20))
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + delay - tonumber(ARGV[6]), ARGV[1])
return 1
"""

# Appends an intent id to the order's history (`payment_refs`; a wave 1
# order starts it from its `payment_ref`).
_REFS = """
local function add_ref(order_key, ref)
  local refs = redis.call('HGET', order_key, 'payment_refs')
  if not refs then refs = redis.call('HGET', order_key, 'payment_ref') or '' end
  local joined = (refs .. ' ' .. ref):gsub('^ ', '')
  redis.call('HSET', order_key, 'payment_refs', joined)
end
"""

# KEYS: order   ARGV: token, payment_ref, client_secret, status
_SET_INTENT = (
    _REFS
    + """
if redis.call('HGET', KEYS[1], 'payment_ref') then return 0 end
redis.call('HSET', KEYS[1], 'payment_ref', ARGV[2], 'client_secret', ARGV[3], 'pi_status', ARGV[4])
add_ref(KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: order   ARGV: replaced payment_ref, new payment_ref, new client_secret, status
# Another card for a pending order: only from the intent the caller saw.
_REPLACE_INTENT = (
    _REFS
    + """
local o = redis.call('HMGET', KEYS[1], 'status', 'payment_ref')
if o[1] ~= 'pending' or o[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'payment_ref', ARGV[2], 'client_secret', ARGV[3], 'pi_status', ARGV[4])
add_ref(KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: order   ARGV: payment_ref, status  (what the current intent last said)
_NOTE_STATUS = """
if redis.call('HGET', KEYS[1], 'payment_ref') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pi_status', ARGV[2])
return 1
"""

# KEYS: order, holds, log, head
# ARGV: payment_ref, error, now, decline_hold_s, max_attempts
# A declined card: counted once per intent, only for the current intent of a
# pending order; the hold shortens; 'exhausted' when no attempt is left.
_DECLINE = lua.script("""
local o = redis.call('HMGET', KEYS[1], 'status', 'payment_ref', 'declined', 'hold_until', 'id',
  'identity')
if o[1] ~= 'pending' or o[2] ~= ARGV[1] then return {'noop'} end
local declined = o[3] or ''
for ref in declined:gmatch('%S+') do if ref == ARGV[1] then return {'noop'} end end
declined = (declined .. ' ' .. ARGV[1]):gsub('^ ', '')
local n = 0
for _ in declined:gmatch('%S+') do n = n + 1 end
local now = tonumber(ARGV[3])
local hold = math.min(tonumber(o[4]), now + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'declined', declined, 'payment_error', ARGV[2],
  'pi_status', 'requires_payment_method', 'hold_until', tostring(hold))
redis.call('ZADD', KEYS[2], hold, o[5])
log_append(KEYS[3], KEYS[4], 'order.declined', cjson.encode({order_id = o[5], identity = o[6],
  payment_ref = ARGV[1], attempts = n}), ARGV[3])
if n >= tonumber(ARGV[5]) then return {'exhausted'} end
return {'recorded'}
""")

# KEYS: order, refunds due   ARGV: member, payment_ref, now
# An intent of this order owes its money back (once: not if already refunded).
_OWE_REFUND = """
if redis.call('HEXISTS', KEYS[1], 'refund:' .. ARGV[2]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 1
"""

# KEYS: order, refunds due, log, head   ARGV: member, payment_ref, refund_ref, now
_INTENT_REFUNDED = lua.script("""
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[1], 'refund:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
local o = redis.call('HMGET', KEYS[1], 'id', 'identity')
log_append(KEYS[3], KEYS[4], 'order.intent_refunded', cjson.encode({order_id = o[1],
  identity = o[2], payment_ref = ARGV[2], refund_ref = ARGV[3]}), ARGV[4])
return 1
""")

# KEYS: index, order   ARGV: member, cutoff, now, first_s, max_s, offset
# Claim a scheduled Stripe call about an order (one process at a time) and
# push its next one back, exponentially per order (count in `checks`).
_CLAIM_CHECK = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
local n = 0
if redis.call('EXISTS', KEYS[2]) == 1 then n = redis.call('HINCRBY', KEYS[2], 'checks', 1) end
local delay = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(n, 20))
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + delay - tonumber(ARGV[6]), ARGV[1])
return 1
"""

# KEYS: refund_due   ARGV: order_id, now, cutoff  (claim a stuck refund for a retry)
_CLAIM_REFUND = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""


PAYING_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settle script did: the outcome word and the stock it moved."""

    outcome: str  # paid, failed, refund_due, refunded, noop
    moves: tuple[StockMove, ...] = ()


class OrderStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._freeze = redis.register_script(_FREEZE)
        self._settle = redis.register_script(_SETTLE)
        self._claim_intent = redis.register_script(_CLAIM_INTENT)
        self._set_intent = redis.register_script(_SET_INTENT)
        self._replace_intent = redis.register_script(_REPLACE_INTENT)
        self._note_status = redis.register_script(_NOTE_STATUS)
        self._decline = redis.register_script(_DECLINE)
        self._owe_refund = redis.register_script(_OWE_REFUND)
        self._intent_refunded = redis.register_script(_INTENT_REFUNDED)
        self._claim_check = redis.register_script(_CLAIM_CHECK)

    async def find(self, room: str, order_id: str) -> Order | None:
        raw = await self._redis.hgetall(keys.order(room, order_id))
        return order_from_hash(raw) if raw else None

    async def get(self, room: str, order_id: str) -> Order:
        order = await self.find(room, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order

    async def recent_of(self, room: str, identity: str, limit: int = 10) -> list[Order]:
        """The buyer's latest orders in the room, newest first."""
        ids = await self._redis.zrevrange(keys.buyer_orders(room, identity), 0, limit - 1)
        found = [await self.find(room, raw.decode()) for raw in ids]
        return [order for order in found if order is not None]

    async def pending_of(self, room: str, identity: str) -> str | None:
        raw = await self._redis.get(keys.buyer_pending(room, identity))
        return raw.decode() if raw else None

    async def freeze(self, order: Order, version: str, lines: str) -> str:
        """Turn the buyer's cart (at `version`) into `order`: 'ok', 'stale',
        'pending' (the buyer has one waiting: the cart stays) or raises."""
        room, identity = order.room, order.identity
        script_keys = [keys.cart(room, identity), keys.carts_expiry(room)]
        script_keys += [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.orders_created(room), keys.buyer_pending(room, identity)]
        script_keys += [keys.log(room), keys.log_head(room), keys.buyer_orders(room, identity)]
        args = [identity, version, order.id, repr(order.created_at), repr(order.hold_until)]
        args += [lines, str(order.total), order.currency, room, str(order.max_attempts)]
        res = await self._freeze(keys=script_keys, args=args)
        if res[0] == b"expired":
            raise Conflict("the cart has expired")
        return str(res[0].decode())

    async def settle(
        self,
        order: Order,
        action: str,
        now: float,
        *,
        payment_ref: str = "",
        reason: str = "",
        receipt: dict[str, Any] | None = None,
        refund_ref: str = "",
    ) -> Settled:
        room = order.room
        script_keys = [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.orders_created(room), keys.buyer_pending(room, order.identity)]
        script_keys += [keys.orders_refund_due(room), keys.log(room), keys.log_head(room)]
        args: list[Any] = [action, repr(now), payment_ref, reason]
        args += [json.dumps(receipt) if receipt else "", refund_ref]
        for line in order.lines:
            target = Target(room, line.product_id, line.drop_id)
            script_keys += [target.stock_key, target.buyers_key]
            args += [line.line_id, line.drop_id or "", line.qty]
        res = await self._settle(keys=script_keys, args=args)
        return _settled(res)

    async def claim_intent(self, order: Order, token: str, now: float) -> tuple[str, str]:
        res = await self._claim_intent(
            keys=[keys.order(order.room, order.id)], args=[token, repr(now), 30]
        )
        return res[0].decode(), (res[1].decode() if len(res) > 1 else "")

    async def set_intent(self, order: Order, token: str, intent: Intent) -> bool:
        key = keys.order(order.room, order.id)
        args = [token, intent.id, intent.client_secret or "", str(intent.status)]
        return bool(await self._set_intent(keys=[key], args=args))

    async def replace_intent(self, order: Order, replaced: str, intent: Intent) -> bool:
        key = keys.order(order.room, order.id)
        args = [replaced, intent.id, intent.client_secret or "", str(intent.status)]
        return bool(await self._replace_intent(keys=[key], args=args))

    async def note_status(self, order: Order, intent: Intent) -> None:
        key = keys.order(order.room, order.id)
        await self._note_status(keys=[key], args=[intent.id, str(intent.status)])

    async def decline(
        self, order: Order, intent: Intent, now: float, hold_s: float, max_attempts: int
    ) -> str:
        """Count a declined card; 'recorded', 'exhausted' or 'noop'."""
        room = order.room
        script_keys = [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.log(room), keys.log_head(room)]
        args = [intent.id, (intent.error or "declined")[:200], repr(now), repr(hold_s)]
        args.append(str(max_attempts))
        res = await self._decline(keys=script_keys, args=args)
        return str(res[0].decode())

    async def owe_refund(self, order: Order, payment_ref: str, now: float) -> bool:
        script_keys = [keys.order(order.room, order.id), keys.refunds_due(order.room)]
        member = f"{order.id} {payment_ref}"
        return bool(await self._owe_refund(keys=script_keys, args=[member, payment_ref, repr(now)]))

    async def intent_refunded(
        self, room: str, order_id: str, payment_ref: str, refund_ref: str, now: float
    ) -> bool:
        script_keys = [keys.order(room, order_id), keys.refunds_due(room)]
        script_keys += [keys.log(room), keys.log_head(room)]
        args = [f"{order_id} {payment_ref}", payment_ref, refund_ref, repr(now)]
        return bool(await self._intent_refunded(keys=script_keys, args=args))

    async def claim_check(
        self,
        index_key: str,
        room: str,
        order_id: str,
        now: float,
        *,
        member: str | None = None,
        offset: float = 0.0,
    ) -> bool:
        """Claim the due Stripe call about an order in `index_key` (its score at
        most `now - offset`) and push the next one back: per-order exponential
        backoff, counted in the order's `checks` field."""
        script_keys = [index_key, keys.order(room, order_id)]
        args = [member or order_id, repr(now - offset), repr(now)]
        args += [repr(BACKOFF_FIRST_S), repr(BACKOFF_MAX_S), repr(offset)]
        return bool(await self._claim_check(keys=script_keys, args=args))

    async def start_paying(self, order: Order, ttl_ms: int) -> bool:
        """Claim the order's card confirmation (one at a time; expires by itself)."""
        key = keys.order_paying(order.room, order.id)
        return bool(await self._redis.set(key, "1", nx=True, px=ttl_ms))

    async def wait_paid_attempt(self, order: Order, timeout_s: float) -> None:
        """Until the card confirmation under way for the order is over (polled)."""
        key = keys.order_paying(order.room, order.id)
        for _ in range(int(timeout_s / PAYING_POLL_S)):
            if not await self._redis.exists(key):
                return
            await asyncio.sleep(PAYING_POLL_S)

    async def done_paying(self, order: Order) -> None:
        await self._redis.delete(keys.order_paying(order.room, order.id))

    async def watch(self, order: Order, now: float) -> None:
        """Have the reconciler ask Stripe about this failed order's intent again."""
        await self._redis.zadd(keys.orders_verify(order.room), {order.id: now}, nx=True)

    async def unwatch(self, room: str, order_id: str) -> None:
        await self._redis.zrem(keys.orders_verify(room), order_id)

    async def release_claim(self, order: Order) -> None:
        await self._redis.hdel(keys.order(order.room, order.id), "pi_claim", "pi_claim_at")

    async def due(self, index_key: str, until: float) -> list[str]:
        return [i.decode() for i in await self._redis.zrangebyscore(index_key, "-inf", until)]


def _settled(res: Sequence[Any]) -> Settled:
    outcome = res[0].decode()
    rest = res[1:] if outcome == "failed" else []
    moves = tuple(
        StockMove(rest[i].decode(), int(rest[i + 1]), rest[i + 2].decode())
        for i in range(0, len(rest), 3)
    )
    return Settled(outcome, moves)
