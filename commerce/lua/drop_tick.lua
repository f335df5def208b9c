--@include commerce/drop_state
-- drop_tick (the scheduler): announce the drop's transition if one is due
-- (a compare-and-set on the announced state, so each is announced once) and
-- reschedule its next check. Returns the state announced, or ''.
local drop_key, due_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local drop_id, now = ARGV[1], tonumber(ARGV[2])

local f = redis.call('HMGET', drop_key, 'starts_at', 'ends_at')
if not f[1] then redis.call('ZREM', due_key, drop_id) return '' end
local s = announce(drop_key, drop_id, now, log_key, head_key) or ''
local starts, ends = tonumber(f[1]), tonumber(f[2])
if now < starts then redis.call('ZADD', due_key, starts, drop_id)
elseif now < ends then redis.call('ZADD', due_key, ends, drop_id)
else redis.call('ZREM', due_key, drop_id) end
return s
