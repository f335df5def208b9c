--@include kernel/refuse
--@include kernel/log_append
--@include commerce/reserve_rules
--@include commerce/stock
--@include commerce/drop_state
-- buy_now (buy:now): reserve `qty` units of one drop or product and make them
-- the buyer's pending order in one step, without touching the buyer's cart.
-- The reservation passes the same rules as cart:add (reserve_rules); the
-- order is written as order_freeze writes one.
-- KEYS: stock, buyers, slots, order, holds, created, pending, log, head, buyer orders,
--       the room's orders
-- ARGV: identity, line_id, qty, now, hold_until, drop_id ('' = a product),
--       order_id, title, room, max_attempts, max_total, email, shipping JSON,
--       signed_in ('1' = an account)
-- Returns {'ok', left (-1 untracked), announced state or ''}; refuses conflict
-- (an order waits for payment), invalid (total too large) or check_reserve's.
local stock_key, buyers_key, slots_key, order_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local holds_key, created_key, pending_key, log_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local head_key, buyer_orders_key, all_key = KEYS[9], KEYS[10], KEYS[11]
local identity, line_id, qty, now_s = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local hold_until, drop_id, order_id, title = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local room, max_attempts, max_total = ARGV[9], ARGV[10], tonumber(ARGV[11])
local email, shipping, signed_in = ARGV[12], ARGV[13], ARGV[14]
local now = tonumber(now_s)

local pending = redis.call('GET', pending_key)
if pending then
  return refuse('conflict', 'an order waits for payment (' .. pending .. '): pay or cancel it first')
end
local s, refused = check_reserve(stock_key, buyers_key, slots_key, identity, qty, now, drop_id,
                                 signed_in)
if not s then return refused end
local price = tonumber(s[1])
if price * qty > max_total then
  return refuse('invalid', 'the total is above what one payment may take')
end
hold_units(stock_key, qty)
redis.call('HINCRBY', buyers_key, identity, qty)
local line_drop_id = cjson.null
if drop_id ~= '' then line_drop_id = drop_id end
local lines = cjson.encode({{line_id = line_id, product_id = s[3], drop_id = line_drop_id,
  title = title, qty = qty, unit_price = price, amount = price * qty}})
redis.call('HSET', order_key, 'id', order_id, 'room', room, 'identity', identity,
  'status', 'pending', 'lines', lines, 'total', price * qty, 'currency', s[2],
  'created_at', now_s, 'hold_until', hold_until, 'max_attempts', max_attempts,
  'one_click', '1')
if email ~= '' then redis.call('HSET', order_key, 'email', email) end
if shipping ~= '' then redis.call('HSET', order_key, 'shipping', shipping) end
redis.call('ZADD', holds_key, hold_until, order_id)
redis.call('ZADD', created_key, now_s, order_id)
redis.call('SET', pending_key, order_id)
redis.call('ZADD', buyer_orders_key, now_s, order_id)
redis.call('ZADD', all_key, now_s, order_id)
log_append(log_key, head_key, 'order.created', cjson.encode({order_id = order_id,
  identity = identity, lines = cjson.decode(lines), total = price * qty,
  currency = s[2], one_click = true}), now_s)
local announced = ''
if drop_id ~= '' then announced = announce(stock_key, drop_id, now, log_key, head_key) or '' end
return {'ok', left_of(stock_key), announced}
