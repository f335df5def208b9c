"""Atomic stock reservation: the Lua scripts that move units between a
stock's `left` and `held` for a buyer's cart, enforce the per-buyer limit and
the drop's window, and never let `left` go below zero.

One script per change: reserve (cart:add), release one line (cart:remove),
expire a whole cart (the sweeper). Every script touches only keys of the
room's hash tag (one Cluster slot): a drop's stock, or the room's share of a
plain product (commerce.shares fills it from the product's pool). Must not
import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from commerce import keys, lua

# KEYS: cart, stock, buyers, carts expiry, log, head, room's slots
# ARGV: identity, line_id, qty, now, expires_at, max_line_qty, cart_id, drop_id
# A product (not a drop) is sold only while a slot of this room offers it.
# A cart has no Redis TTL: its stock may only come back through the expire
# script (the sweeper), never by Redis forgetting the key.
# -> {'ok', left, announced-or-'', cart fields...} or {code, message}
_RESERVE = lua.script("""
local now = tonumber(ARGV[4])
local qty = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[2], 'price', 'currency', 'product_id', 'tracked', 'left',
                     'starts_at', 'ends_at', 'limit')
if not s[1] then return {'not_found', 'no such product or drop'} end
if s[6] and (now < tonumber(s[6]) or now >= tonumber(s[7])) then
  return {'conflict', 'the drop is not live'}
end
if ARGV[8] == '' then
  local offered = false
  for _, v in ipairs(redis.call('HVALS', KEYS[7])) do
    if cjson.decode(v).product_id == s[3] then offered = true end
  end
  if not offered then return {'conflict', 'that product is not offered in this room'} end
end
local currency = redis.call('HGET', KEYS[1], 'currency')
if currency and currency ~= s[2] then
  return {'conflict', 'the cart holds another currency'}
end
local field = 'line:' .. ARGV[2]
local raw = redis.call('HGET', KEYS[1], field)
local had = 0
if raw then had = cjson.decode(raw).qty end
if had + qty > tonumber(ARGV[6]) then
  return {'invalid', 'too many of one item in the cart'}
end
local limit = tonumber(s[8] or '0')
if limit > 0 then
  local bought = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
  if bought + qty > limit then return {'limit_reached', 'the per-buyer limit is reached'} end
end
if s[4] == '1' and tonumber(s[5]) < qty then
  return {'sold_out', 'not enough stock left'}
end
hold_units(KEYS[2], qty)
if KEYS[3] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[1], qty) end
local drop_id = cjson.null
if ARGV[8] ~= '' then drop_id = ARGV[8] end
redis.call('HSET', KEYS[1], field, cjson.encode({line_id = ARGV[2], product_id = s[3],
  drop_id = drop_id, qty = had + qty, unit_price = tonumber(s[1])}),
  'currency', s[2], 'expires_at', ARGV[5])
redis.call('HSETNX', KEYS[1], 'cart_id', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
local announced = ''
if ARGV[8] ~= '' then announced = announce(KEYS[2], ARGV[8], now, KEYS[5], KEYS[6]) or '' end
local out = {'ok', left_of(KEYS[2]), announced}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = v end
return out
""")

# KEYS: cart, stock, buyers, carts expiry, log, head
# ARGV: identity, line_id, now, expires_at, drop_id
_RELEASE_LINE = lua.script("""
local now = tonumber(ARGV[3])
local field = 'line:' .. ARGV[2]
local raw = redis.call('HGET', KEYS[1], field)
if not raw then return {'not_found', 'no such line in the cart'} end
release_units(KEYS[2], KEYS[3], ARGV[1], cjson.decode(raw).qty)
redis.call('HDEL', KEYS[1], field)
redis.call('HINCRBY', KEYS[1], 'v', 1)
local lines = 0
for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(k, 1, 5) == 'line:' then lines = lines + 1 end
end
if lines == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'expires_at', ARGV[4])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
end
local announced = ''
if ARGV[5] ~= '' then announced = announce(KEYS[2], ARGV[5], now, KEYS[5], KEYS[6]) or '' end
local out = {'ok', left_of(KEYS[2]), announced}
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do out[#out + 1] = v end
return out
""")

# KEYS: cart, carts expiry, log, head, then (stock, buyers) per line
# ARGV: identity, now, version, then (line_id, drop_id) per line, same order
# The version check makes the caller's view of the lines (hence KEYS) current.
_EXPIRE_CART = lua.script("""
local now = tonumber(ARGV[2])
local c = redis.call('HMGET', KEYS[1], 'v', 'expires_at')
if not c[1] then redis.call('ZREM', KEYS[2], ARGV[1]) return {'gone'} end
if c[1] ~= ARGV[3] then return {'stale'} end
if tonumber(c[2]) > now then return {'not_due'} end
local out = {'ok'}
local n = (#KEYS - 4) / 2
for i = 1, n do
  local stock, buyers = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local line_id, drop_id = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local raw = redis.call('HGET', KEYS[1], 'line:' .. line_id)
  if raw then release_units(stock, buyers, ARGV[1], cjson.decode(raw).qty) end
  local announced = ''
  if drop_id ~= '' then announced = announce(stock, drop_id, now, KEYS[3], KEYS[4]) or '' end
  out[#out + 1] = line_id
  out[#out + 1] = left_of(stock)
  out[#out + 1] = announced
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return out
""")


@dataclass(frozen=True, slots=True)
class Target:
    """What a cart line reserves against: a drop of the room or a product."""

    room: str
    product_id: str
    drop_id: str | None

    @property
    def line_id(self) -> str:
        return f"d.{self.drop_id}" if self.drop_id else f"p.{self.product_id}"

    @property
    def stock_key(self) -> str:
        if self.drop_id:
            return keys.drop(self.room, self.drop_id)
        return keys.share(self.room, self.product_id)

    @property
    def buyers_key(self) -> str:
        # Plain products have no per-buyer limit: the key stays empty, but it is
        # a real key of the room's slot (a '' key would hash to slot 0).
        if self.drop_id:
            return keys.drop_buyers(self.room, self.drop_id)
        return keys.share_buyers(self.room, self.product_id)

    @classmethod
    def from_line_id(cls, room: str, line_id: str) -> Target | None:
        kind, _, ident = line_id.partition(".")
        if kind == "d" and ident:
            return cls(room, "", ident)
        if kind == "p" and ident:
            return cls(room, ident, None)
        return None


@dataclass(frozen=True, slots=True)
class StockMove:
    """What a script answered: the stock left and a drop state it announced."""

    line_id: str
    left: int  # -1 for untracked stock
    announced: str


class InventoryScripts:
    """The registered scripts, called with keys built from a `Target`."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.reserve = redis.register_script(_RESERVE)
        self.release_line = redis.register_script(_RELEASE_LINE)
        self.expire_cart = redis.register_script(_EXPIRE_CART)


def line_keys(room: str, identity: str, target: Target) -> list[str]:
    return [
        keys.cart(room, identity),
        target.stock_key,
        target.buyers_key,
        keys.carts_expiry(room),
        keys.log(room),
        keys.log_head(room),
    ]


def expire_args(room: str, line_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The per-line KEYS and ARGV tails of the expire script."""
    k: list[str] = []
    a: list[str] = []
    for line_id in line_ids:
        target = Target.from_line_id(room, line_id)
        if target is None:
            continue
        k += [target.stock_key, target.buyers_key]
        a += [line_id, target.drop_id or ""]
    return k, a
