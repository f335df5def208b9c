-- hook_result: the outcome of one delivery attempt. "delivered" and
-- "failed" settle it (out of the queue, kept `keep_s` for the log);
-- "retry" makes it due again at `next_at`. A delivery already settled (a
-- lease that ran out while another worker finished it) changes nothing.
-- Answers the attempts so far, 0 when nothing changed.
local due_key, delivery_key = KEYS[1], KEYS[2]
local delivery_id, outcome, now = ARGV[1], ARGV[2], ARGV[3]
local status, error_text, next_at, keep_s = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])

if redis.call('HGET', delivery_key, 'state') ~= 'pending' then
  redis.call('ZREM', due_key, delivery_id)
  return 0
end
local attempts = redis.call('HINCRBY', delivery_key, 'attempts', 1)
redis.call('HSET', delivery_key, 'last_at', now, 'last_status', status, 'last_error', error_text)
if outcome == 'retry' then
  redis.call('HSET', delivery_key, 'next_at', next_at)
  redis.call('ZADD', due_key, next_at, delivery_id)
  return attempts
end
redis.call('HSET', delivery_key, 'state', outcome, 'next_at', '')
if outcome == 'delivered' then
  redis.call('HSET', delivery_key, 'delivered_at', now)
end
redis.call('ZREM', due_key, delivery_id)
redis.call('EXPIRE', delivery_key, keep_s)
return attempts
