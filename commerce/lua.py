"""Lua building blocks shared by the shop's scripts.

A stock is a hash with `tracked`, `given`, `left`, `held` and `sold` (a
product or a drop); a drop adds its window and the state it last announced.
Scripts are assembled from this prelude so every change of stock, of a
drop's announced state and of an order happens in one script, together with
its entry in the room's hash-chained log. Must not import anything of ours
but `kernel.eventlog`.
"""

from kernel.eventlog import LUA_APPEND

# Drop state, derived exactly like commerce.drops.derive_state.
_STATE = """
local function drop_state(starts, ends, left, now)
  if now >= ends then return 'ended' end
  if now < starts then return 'scheduled' end
  if left <= 0 then return 'sold_out' end
  return 'live'
end

-- Announce the drop's state if it changed; returns the new state or false.
local function announce(drop_key, drop_id, now, log_key, head_key)
  local f = redis.call('HMGET', drop_key, 'starts_at', 'ends_at', 'left', 'announced', 'given')
  if not f[1] then return false end
  local s = drop_state(tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), now)
  if s == f[4] then return false end
  redis.call('HSET', drop_key, 'announced', s)
  log_append(log_key, head_key, 'drop.' .. s,
    cjson.encode({drop_id = drop_id, remaining = tonumber(f[3]), stock = tonumber(f[5])}),
    tostring(now))
  return s
end
"""

# Moving units between left, held and sold, and the buyer's count.
_STOCK = """
local function hold_units(stock_key, q)
  if redis.call('HGET', stock_key, 'tracked') == '1' then
    redis.call('HINCRBY', stock_key, 'left', -q)
    redis.call('HINCRBY', stock_key, 'held', q)
  end
end

local function release_units(stock_key, buyers_key, identity, q)
  if redis.call('HGET', stock_key, 'tracked') == '1' then
    redis.call('HINCRBY', stock_key, 'left', q)
    redis.call('HINCRBY', stock_key, 'held', -q)
  end
  if buyers_key ~= '' then
    if redis.call('HINCRBY', buyers_key, identity, -q) <= 0 then
      redis.call('HDEL', buyers_key, identity)
    end
  end
end

local function sell_units(stock_key, q)
  if redis.call('HGET', stock_key, 'tracked') == '1' then
    redis.call('HINCRBY', stock_key, 'held', -q)
    redis.call('HINCRBY', stock_key, 'sold', q)
  end
end

local function left_of(stock_key)
  local left = redis.call('HGET', stock_key, 'left')
  if left then return tonumber(left) end
  return -1
end
"""

PRELUDE = LUA_APPEND + _STATE + _STOCK


def script(body: str) -> str:
    """A full script: the prelude, then the body."""
    return PRELUDE + body
