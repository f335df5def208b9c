--@include commerce/drop_state
-- drop_schedule (drop:schedule): a new drop with its window, stock and
-- per-buyer limit, indexed for the room and for the scheduler's tick, logged
-- and announced. Returns 1, or 0 if the drop id exists already.
local drop_key, drops_key, due_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local drop_id, product_id, price, currency = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local starts_at, ends_at, stock, limit, now = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local requires_account = ARGV[11] or '0'  -- '1': only signed-in buyers may reserve

if redis.call('EXISTS', drop_key) == 1 then return 0 end
redis.call('HSET', drop_key, 'product_id', product_id, 'price', price, 'currency', currency,
  'starts_at', starts_at, 'ends_at', ends_at, 'limit', limit, 'tracked', '1',
  'given', stock, 'left', stock, 'held', 0, 'sold', 0, 'announced', '',
  'requires_account', requires_account)
redis.call('ZADD', drops_key, starts_at, drop_id)
redis.call('ZADD', due_key, now, drop_id)
log_append(log_key, head_key, 'drop.scheduled', cjson.encode({drop_id = drop_id,
  product_id = product_id, starts_at = tonumber(starts_at), ends_at = tonumber(ends_at),
  stock = tonumber(stock), per_buyer_limit = tonumber(limit),
  requires_account = requires_account == '1'}), now)
announce(drop_key, drop_id, tonumber(now), log_key, head_key)
return 1
