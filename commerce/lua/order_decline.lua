--@include kernel/log_append
-- order_decline: a declined card, counted once per intent, only for the
-- current intent of a pending order; the hold shortens to now + decline_hold_s.
-- Returns {'noop'}, {'recorded'} or {'exhausted'} (no attempt left).
local order_key, holds_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local payment_ref, error_text, now_s = ARGV[1], ARGV[2], ARGV[3]
local decline_hold_s, max_attempts = tonumber(ARGV[4]), tonumber(ARGV[5])

local o = redis.call('HMGET', order_key, 'status', 'payment_ref', 'declined', 'hold_until', 'id',
  'identity')
if o[1] ~= 'pending' or o[2] ~= payment_ref then return {'noop'} end
local declined = o[3] or ''
for ref in declined:gmatch('%S+') do if ref == payment_ref then return {'noop'} end end
declined = (declined .. ' ' .. payment_ref):gsub('^ ', '')
local n = 0
for _ in declined:gmatch('%S+') do n = n + 1 end
local now = tonumber(now_s)
local hold = math.min(tonumber(o[4]), now + decline_hold_s)
redis.call('HSET', order_key, 'declined', declined, 'payment_error', error_text,
  'pi_status', 'requires_payment_method', 'hold_until', tostring(hold))
redis.call('ZADD', holds_key, hold, o[5])
log_append(log_key, head_key, 'order.declined', cjson.encode({order_id = o[5],
  identity = o[6], payment_ref = payment_ref, attempts = n}), now_s)
if n >= max_attempts then return {'exhausted'} end
return {'recorded'}
