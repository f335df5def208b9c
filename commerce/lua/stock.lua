-- A stock is a hash with `tracked`, `given`, `left`, `held` and `sold` (a
-- product's pool, a room's share of it, or a drop). Units only move between
-- left, held and sold here, so given == left + held + sold always holds
-- (tests/test_lua_rules.py checks it against commerce.catalog.Inventory).

-- hold_units(stock_key, q): q units from left to held (a cart line).
local function hold_units(stock_key, q)
  if redis.call('HGET', stock_key, 'tracked') == '1' then
    redis.call('HINCRBY', stock_key, 'left', -q)
    redis.call('HINCRBY', stock_key, 'held', q)
  end
end

-- release_units(stock_key, buyers_key, identity, q): q units from held back
-- to left, and the buyer's count down by q ('' buyers_key: none kept).
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

-- sell_units(stock_key, q): q units from held to sold (a paid order).
local function sell_units(stock_key, q)
  if redis.call('HGET', stock_key, 'tracked') == '1' then
    redis.call('HINCRBY', stock_key, 'held', -q)
    redis.call('HINCRBY', stock_key, 'sold', q)
  end
end

-- left_of(stock_key): the units left, -1 for untracked stock.
local function left_of(stock_key)
  local left = redis.call('HGET', stock_key, 'left')
  if left then return tonumber(left) end
  return -1
end
