--@include kernel/refuse
--@include commerce/stock
--@include commerce/drop_state
-- release_line (cart:remove): give one line's units back to its stock; the
-- cart goes when its last line does, else its time to live starts again.
-- Returns {'ok', left (-1 untracked), announced state or '', cart fields...};
-- refuses not_found (no such line).
local cart_key, stock_key, buyers_key, expiry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log_key, head_key = KEYS[5], KEYS[6]
local identity, line_id, now, expires_at, drop_id =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]

local field = 'line:' .. line_id
local raw = redis.call('HGET', cart_key, field)
if not raw then return refuse('not_found', 'no such line in the cart') end
release_units(stock_key, buyers_key, identity, cjson.decode(raw).qty)
redis.call('HDEL', cart_key, field)
redis.call('HINCRBY', cart_key, 'v', 1)
local lines = 0
for _, k in ipairs(redis.call('HKEYS', cart_key)) do
  if string.sub(k, 1, 5) == 'line:' then lines = lines + 1 end
end
if lines == 0 then
  redis.call('DEL', cart_key)
  redis.call('ZREM', expiry_key, identity)
else
  redis.call('HSET', cart_key, 'expires_at', expires_at)
  redis.call('ZADD', expiry_key, expires_at, identity)
end
local announced = ''
if drop_id ~= '' then announced = announce(stock_key, drop_id, now, log_key, head_key) or '' end
local out = {'ok', left_of(stock_key), announced}
for _, v in ipairs(redis.call('HGETALL', cart_key)) do out[#out + 1] = v end
return out
