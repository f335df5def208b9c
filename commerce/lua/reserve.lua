--@include kernel/refuse
--@include commerce/stock
--@include commerce/drop_state
-- reserve (cart:add): hold `qty` units of a drop's stock, or of the room's
-- share of a product, for the buyer's cart. A product (not a drop) is sold
-- only while a slot of this room offers it. A cart has no Redis TTL: its
-- stock may only come back through expire_cart (the sweeper), never by Redis
-- forgetting the key.
-- Returns {'ok', left (-1 untracked), announced state or '', cart fields...};
-- refuses not_found, conflict, invalid, limit_reached or sold_out first.
local cart_key, stock_key, buyers_key, expiry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_key, head_key, slots_key = KEYS[5], KEYS[6], KEYS[7]
local identity, line_id, qty, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local expires_at, max_line_qty, cart_id, drop_id = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]

local s = redis.call('HMGET', stock_key, 'price', 'currency', 'product_id', 'tracked', 'left',
                     'starts_at', 'ends_at', 'limit')
if not s[1] then return refuse('not_found', 'no such product or drop') end
if s[6] and (now < tonumber(s[6]) or now >= tonumber(s[7])) then
  return refuse('conflict', 'the drop is not live')
end
if drop_id == '' then
  local offered = false
  for _, v in ipairs(redis.call('HVALS', slots_key)) do
    if cjson.decode(v).product_id == s[3] then offered = true end
  end
  if not offered then return refuse('conflict', 'that product is not offered in this room') end
end
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
local limit = tonumber(s[8] or '0')
if limit > 0 then
  local bought = tonumber(redis.call('HGET', buyers_key, identity) or '0')
  if bought + qty > limit then return refuse('limit_reached', 'the per-buyer limit is reached') end
end
if s[4] == '1' and tonumber(s[5]) < qty then
  return refuse('sold_out', 'not enough stock left')
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
