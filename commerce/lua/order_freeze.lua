--@include kernel/refuse
--@include kernel/log_append
-- order_freeze (cart:checkout): turn the buyer's cart, as the caller saw it
-- (`version`), into a pending order holding the cart's units until hold_until.
-- Returns {'ok'}, {'stale'} (the cart changed) or {'pending', order_id}
-- (the buyer has an order waiting: the cart stays); refuses conflict when the
-- cart has expired.
local cart_key, expiry_key, order_key, holds_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local created_key, pending_key, log_key, head_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local buyer_orders_key, all_key = KEYS[9], KEYS[10]
local identity, version, order_id, now, hold_until = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lines, total, currency, room, max_attempts = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local email, shipping = ARGV[11] or '', ARGV[12] or ''  -- the buyer's details ('' = none)

local pending = redis.call('GET', pending_key)
if pending then return {'pending', pending} end
local c = redis.call('HMGET', cart_key, 'v', 'expires_at')
if c[1] ~= version then return {'stale'} end
if tonumber(c[2]) <= tonumber(now) then return refuse('conflict', 'the cart has expired') end
redis.call('HSET', order_key, 'id', order_id, 'room', room, 'identity', identity,
  'status', 'pending', 'lines', lines, 'total', total, 'currency', currency,
  'created_at', now, 'hold_until', hold_until, 'max_attempts', max_attempts)
if email ~= '' then redis.call('HSET', order_key, 'email', email) end
if shipping ~= '' then redis.call('HSET', order_key, 'shipping', shipping) end
redis.call('ZADD', holds_key, hold_until, order_id)
redis.call('ZADD', created_key, now, order_id)
redis.call('SET', pending_key, order_id)
redis.call('ZADD', buyer_orders_key, now, order_id)
redis.call('ZADD', all_key, now, order_id)
redis.call('DEL', cart_key)
redis.call('ZREM', expiry_key, identity)
log_append(log_key, head_key, 'order.created', cjson.encode({order_id = order_id,
  identity = identity, lines = cjson.decode(lines), total = tonumber(total),
  currency = currency}), now)
return {'ok'}
