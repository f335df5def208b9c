--@include kernel/refuse
--@include commerce/reserve_rules
--@include commerce/stock
--@include commerce/drop_state
-- reserve (cart:add): hold `qty` units of a drop's stock, or of the room's
-- share of a product, for the buyer's cart. A product (not a drop) is sold
-- only while a slot of this room offers it. A cart has no Redis TTL: its
-- stock may only come back through expire_cart (the sweeper), never by Redis
-- forgetting the key.
-- Returns {'ok', left (-1 untracked), announced state or '', cart fields...};
-- refuses not_found, conflict, unauthorized, limit_reached, sold_out or invalid
-- first (commerce/lua/reserve_rules.lua).
local cart_key, stock_key, buyers_key, expiry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_key, head_key, slots_key = KEYS[5], KEYS[6], KEYS[7]
local identity, line_id, qty, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local expires_at, max_line_qty, cart_id, drop_id = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]

local signed_in = ARGV[9] or '0'  -- '1' when the buyer is signed in (an account)

local s, refused = check_reserve(stock_key, buyers_key, slots_key, identity, qty, now, drop_id,
                                 signed_in)
if not s then return refused end
local currency = redis.call('HGET', cart_key, 'currency')
if currency and currency ~= s[2] then
  return refuse('conflict', 'the cart holds another currency')
end
local field = 'line:' .. line_id
local raw = redis.call('HGET', cart_key, field)
local had = 0
if raw then had = cjson.decode(raw).qty end
if had + qty > max_line_qty then
  return refuse('invalid', 'too many of one item in the cart')
end
hold_units(stock_key, qty)
if buyers_key ~= '' then redis.call('HINCRBY', buyers_key, identity, qty) end
local line_drop_id = cjson.null
if drop_id ~= '' then line_drop_id = drop_id end
redis.call('HSET', cart_key, field, cjson.encode({line_id = line_id, product_id = s[3],
  drop_id = line_drop_id, qty = had + qty, unit_price = tonumber(s[1])}),
  'currency', s[2], 'expires_at', expires_at)
redis.call('HSETNX', cart_key, 'cart_id', cart_id)
redis.call('HINCRBY', cart_key, 'v', 1)
redis.call('ZADD', expiry_key, expires_at, identity)
local announced = ''
if drop_id ~= '' then announced = announce(stock_key, drop_id, now, log_key, head_key) or '' end
local out = {'ok', left_of(stock_key), announced}
for _, v in ipairs(redis.call('HGETALL', cart_key)) do out[#out + 1] = v end
return out
