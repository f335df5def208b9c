-- share_in (step 2 of a move, commerce.shares): add the move's units to the
-- destination stock unless its inbox has seen the move id (inbox entries are
-- kept keep_s seconds). Returns 1 if added, 0 if seen before.
local stock_key, inbox_key = KEYS[1], KEYS[2]
local move_id, field, n, now, keep_s = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('ZSCORE', inbox_key, move_id) then return 0 end
redis.call('ZREMRANGEBYSCORE', inbox_key, '-inf', tonumber(now) - tonumber(keep_s))
redis.call('HINCRBY', stock_key, field, n)
redis.call('HINCRBY', stock_key, 'given', n)
redis.call('ZADD', inbox_key, now, move_id)
return 1
